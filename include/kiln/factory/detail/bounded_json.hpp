#pragma once
/// Parsing JSON with a bound on its nesting depth, in time linear in its length, noting the
/// keys of the objects at one chosen depth as they come (to tell keys listed twice).
///
///   BoundedJsonRead read = read_bounded_json(text, 64, 2);
///   if (!read.problem.empty()) ...;  // not JSON, or nested deeper than 64 levels
///   read.doc;                        // the document; read.repeated: keys at depth 2 seen twice
///
/// nlohmann's parse callback would do the same, but its parser then searches each enclosing
/// object for discarded values whenever an object closes, which makes a file of n entries
/// cost n^2 (40,000 entries: 13 s). This builds the document through SAX events instead.

#include <cstddef>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace kiln::factory::detail {

/// What read_bounded_json() found.
struct BoundedJsonRead {
  nlohmann::json doc;
  /// Why the text was not read ("" where it was): "not valid JSON: ...", or too deep.
  std::string problem;
  /// Keys listed more than once in one object at the chosen depth (JSON keeps the last).
  std::set<std::string> repeated;
};

/// The SAX handler behind read_bounded_json(): builds the document with one stack of the
/// open containers, each event costing O(1) (plus the object's key lookup).
class BoundedJsonBuilder {
 public:
  using json = nlohmann::json;

  BoundedJsonBuilder(BoundedJsonRead& out, int max_depth, int keys_depth)
      : out_(out), max_depth_(max_depth), keys_depth_(keys_depth) {}

  bool null() { return add(json(nullptr)); }
  bool boolean(bool v) { return add(json(v)); }
  bool number_integer(json::number_integer_t v) { return add(json(v)); }
  bool number_unsigned(json::number_unsigned_t v) { return add(json(v)); }
  bool number_float(json::number_float_t v, const json::string_t&) { return add(json(v)); }
  bool string(json::string_t& v) { return add(json(std::move(v))); }
  bool binary(json::binary_t& v) { return add(json::binary(std::move(v))); }

  bool start_object(std::size_t) { return open(json::object()); }
  bool start_array(std::size_t) { return open(json::array()); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }

  bool key(json::string_t& k) {
    if (static_cast<int>(open_.size()) == keys_depth_) {
      if (!keys_.back().insert(k).second) out_.repeated.insert(k);
    }
    key_ = std::move(k);
    return true;
  }

  bool parse_error(std::size_t, const std::string&, const json::exception& e) {
    std::string what = e.what();  // "[json.exception.parse_error.101] parse error at ..."
    if (const auto end = what.find("] "); what.starts_with("[json.") && end != what.npos) {
      what.erase(0, end + 2);
    }
    out_.problem = "not valid JSON: " + what;
    return false;
  }

 private:
  /// Puts `v` where the document expects the next value; returns it.
  json* place(json&& v) {
    if (open_.empty()) {
      out_.doc = std::move(v);
      return &out_.doc;
    }
    json& parent = *open_.back();
    if (parent.is_array()) {
      parent.push_back(std::move(v));
      return &parent.back();
    }
    json& slot = parent[key_];  // a key listed twice: the last value wins, as in json::parse
    slot = std::move(v);
    return &slot;
  }

  bool add(json&& v) {
    place(std::move(v));
    return true;
  }

  bool open(json&& container) {
    if (static_cast<int>(open_.size()) >= max_depth_) {
      out_.problem = "nested deeper than " + std::to_string(max_depth_) + " levels";
      return false;
    }
    // An array's elements may move as it grows, but only the innermost open container
    // grows, and the pointers kept are to the open ones.
    open_.push_back(place(std::move(container)));
    keys_.emplace_back();
    return true;
  }

  bool close() {
    open_.pop_back();
    keys_.pop_back();
    return true;
  }

  BoundedJsonRead& out_;
  int max_depth_;
  int keys_depth_;
  std::vector<json*> open_;                  // the open containers, outermost first
  std::vector<std::set<std::string>> keys_;  // their keys, where at keys_depth_
  std::string key_;                          // the key of the next value in an object
};

/// Parses `text` as one JSON document nested at most `max_depth` levels, noting keys listed
/// twice in the objects at depth `keys_depth` (1: the top-level object's keys). Linear in
/// the text's length; never throws for the text's sake.
inline BoundedJsonRead read_bounded_json(std::string_view text, int max_depth, int keys_depth) {
  BoundedJsonRead out;
  BoundedJsonBuilder builder(out, max_depth, keys_depth);
  if (!nlohmann::json::sax_parse(text, &builder) && out.problem.empty()) {
    out.problem = "not valid JSON";
  }
  if (!out.problem.empty()) out.doc = nullptr;
  return out;
}

}  // namespace kiln::factory::detail
