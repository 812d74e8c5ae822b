#pragma once
/// The tuning database's fast reader: the file and journal formats of
/// tuning_db_format.hpp read in one pass over the text, straight into the records, with no
/// JSON document of the whole file in between. A database of 100,000 entries loads about six
/// times faster than through the document (3.0 s to 0.5 s; see benchmarks/tuning_db.cpp).
///
///   ParsedTuningDb db = read_tuning_db(text);         // parse_tuning_db(text)'s result
///   apply_journal_fast(journal_text, entries, damage);  // apply_journal()'s
///
/// It reads exactly what the general reader (parse_tuning_db(), apply_journal()) reads and
/// gives the same result: it reads only what it can check entirely itself, and hands the
/// rest to the general reader, which then decides:
///
///   - the whole file, where it is anything but an object holding just "kiln_tuning_db": 1
///     and an "entries" object, or is not valid JSON, or nests deeper than the bound
///     (tuning_db_max_depth), or holds a number that does not convert exactly;
///   - one entry, where it is anything but the fields kiln writes, each of its type, each
///     once: that entry's text is then read into the JSON document nlohmann::json would make
///     of it and converted by tuning_json.hpp's from_json(), as the general reader converts
///     it, so that a damaged entry is counted and explained in the same words;
///   - one journal line, where it is anything but a {"put": <entry>} or {"erase": "<id>"}
///     that it reads entirely.
///
/// Every string is checked as nlohmann::json checks it (UTF-8, escapes, control
/// characters); numbers are converted as it converts them (integers to 64 bits, others with
/// a correctly rounded conversion). tests/factory/tuning_db_reader_test.cpp and the fuzz
/// target tests/fuzz/tuning_db_fuzz.cpp check the two readers against each other.

#include <algorithm>
#include <charconv>
#include <climits>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "../tuning_json.hpp"
#include "../tuning_record.hpp"
#include "tuning_db_format.hpp"

namespace kiln::factory::detail {

/// Thrown inside the fast reader where the text is not what it reads entirely; the general
/// reader then reads it.
struct FastReadDeclined {};

/// One pass over a tuning database's text (or one journal line). Each function reads one
/// value at the current position, after any whitespace has been skipped, and leaves the
/// position just after it; any text it does not read entirely throws FastReadDeclined.
class FastTuningReader {
 public:
  using json = nlohmann::json;

  /// A reader of `text`, whose values are nested in `depth` open containers.
  FastTuningReader(std::string_view text, int depth)
      : p_(text.data()), end_(text.data() + text.size()), depth_(depth) {}

  /// What a database's entry became: the record and its id, or why it could not be read.
  struct Entry {
    std::string name;  // its name in the file
    bool ok = false;
    TuningEntry entry;
    std::string id;
    std::string error;  // where !ok: from_json()'s message
  };

  /// Reads the whole text as a database file: its entries, in the order of the file.
  std::vector<Entry> database() {
    skip_space();
    open('{');
    bool have_version = false, have_entries = false;
    std::vector<Entry> entries;
    do {
      skip_space();
      const std::string_view name = plain_key();
      colon();
      if (name == "kiln_tuning_db" && !have_version) {
        have_version = true;
        const Number v = number();
        if (v.kind != Number::unsigned_int ||
            v.u != static_cast<std::uint64_t>(tuning_db_format_version)) {
          decline();  // another version, or a value that is no version: the general reader
        }
      } else if (name == "entries" && !have_entries) {
        have_entries = true;
        entries = entry_list();
      } else {
        decline();  // a key the general reader ignores or one listed twice
      }
      skip_space();
    } while (next_member('}'));
    skip_space();
    if (p_ != end_ || !have_version || !have_entries) decline();
    return entries;
  }

  /// Reads the whole text as a journal line (without its newline) and applies it to
  /// `entries`; declines, changing nothing, where the line is not one it reads entirely.
  void journal_line(TuningEntries& entries) {
    skip_space();
    open('{');
    skip_space();
    const std::string_view what = plain_key();
    colon();
    std::optional<TuningEntry> put;
    std::string erase;
    if (what == "put") {
      put = entry();
    } else if (what == "erase") {
      erase = string();
    } else {
      decline();
    }
    skip_space();
    if (next_member('}')) decline();  // more members: the general reader's rules apply
    skip_space();
    if (p_ != end_) decline();
    if (put) {
      std::string id = put->key.id();
      entries.insert_or_assign(std::move(id), std::move(*put));
    } else {
      entries.erase(erase);
    }
  }

 private:
  /// A JSON number, converted as nlohmann::json converts it.
  struct Number {
    enum Kind { unsigned_int, signed_int, floating } kind = unsigned_int;
    std::uint64_t u = 0;
    std::int64_t i = 0;
    double d = 0;
  };

  [[noreturn]] static void decline() { throw FastReadDeclined{}; }

  bool more() const { return p_ != end_; }
  /// The next byte, or 0 at the end (0 starts no JSON token).
  unsigned char peek() const { return p_ != end_ ? static_cast<unsigned char>(*p_) : 0; }

  void skip_space() {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\t' || *p_ == '\r')) ++p_;
  }

  void expect(char c) {
    if (p_ == end_ || *p_ != c) decline();
    ++p_;
  }

  void colon() {
    skip_space();
    expect(':');
    skip_space();
  }

  /// Opens an object or array (`bracket`), within the depth bound.
  void open(char bracket) {
    expect(bracket);
    if (++depth_ > tuning_db_max_depth) decline();
  }

  /// After a member or element: true where a ',' follows (then another must), false where
  /// `close` does (the container closes); anything else declines.
  bool next_member(char close) {
    if (p_ != end_ && *p_ == ',') {
      ++p_;
      return true;
    }
    expect(close);
    --depth_;
    return false;
  }

  /// Whether an object or array opened just before is empty (then it is closed).
  bool empty_container(char close) {
    skip_space();
    if (p_ != end_ && *p_ == close) {
      ++p_;
      --depth_;
      return true;
    }
    return false;
  }

  /// A key of printable ASCII without escapes (each of kiln's field names), as a view of
  /// the text; anything else declines.
  std::string_view plain_key() {
    expect('"');
    const char* start = p_;
    while (p_ != end_ && *p_ != '"') {
      const auto c = static_cast<unsigned char>(*p_);
      if (c < 0x20 || c >= 0x80 || c == '\\') decline();
      ++p_;
    }
    expect('"');
    return {start, static_cast<std::size_t>(p_ - 1 - start)};
  }

  static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  /// The four hex digits after "\u".
  unsigned code_unit() {
    if (end_ - p_ < 4) decline();
    unsigned v = 0;
    for (int k = 0; k < 4; ++k) {
      const int d = hex_digit(*p_++);
      if (d < 0) decline();
      v = v << 4 | static_cast<unsigned>(d);
    }
    return v;
  }

  static void append_utf8(std::string& out, unsigned cp) {
    const auto byte = [&](unsigned b) { out += static_cast<char>(b); };
    if (cp < 0x80) {
      byte(cp);
    } else if (cp < 0x800) {
      byte(0xC0 | cp >> 6);
      byte(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      byte(0xE0 | cp >> 12);
      byte(0x80 | (cp >> 6 & 0x3F));
      byte(0x80 | (cp & 0x3F));
    } else {
      byte(0xF0 | cp >> 18);
      byte(0x80 | (cp >> 12 & 0x3F));
      byte(0x80 | (cp >> 6 & 0x3F));
      byte(0x80 | (cp & 0x3F));
    }
  }

  /// An escape sequence (at the backslash), appended to `out` decoded.
  void escape(std::string& out) {
    ++p_;
    if (p_ == end_) decline();
    switch (*p_++) {
      case '"':
        out += '"';
        return;
      case '\\':
        out += '\\';
        return;
      case '/':
        out += '/';
        return;
      case 'b':
        out += '\b';
        return;
      case 'f':
        out += '\f';
        return;
      case 'n':
        out += '\n';
        return;
      case 'r':
        out += '\r';
        return;
      case 't':
        out += '\t';
        return;
      case 'u':
        break;
      default:
        decline();
    }
    unsigned cp = code_unit();
    if (cp >= 0xDC00 && cp <= 0xDFFF) decline();  // a low surrogate alone
    if (cp >= 0xD800 && cp <= 0xDBFF) {           // a high one: its low one must follow
      if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') decline();
      p_ += 2;
      const unsigned low = code_unit();
      if (low < 0xDC00 || low > 0xDFFF) decline();
      cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }
    append_utf8(out, cp);
  }

  /// One well-formed UTF-8 sequence of two to four bytes (RFC 3629: no overlong forms, no
  /// surrogates, nothing past U+10FFFF), appended to `out` as it is.
  void utf8(std::string& out) {
    const auto lead = static_cast<unsigned char>(*p_);
    int length = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // the second byte's range
    if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3;
      if (lead == 0xE0) lo = 0xA0;
      if (lead == 0xED) hi = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4;
      if (lead == 0xF0) lo = 0x90;
      if (lead == 0xF4) hi = 0x8F;
    } else {
      decline();
    }
    if (end_ - p_ < length) decline();
    for (int k = 1; k < length; ++k) {
      const auto c = static_cast<unsigned char>(p_[k]);
      if (c < (k == 1 ? lo : 0x80) || c > (k == 1 ? hi : 0xBF)) decline();
    }
    out.append(p_, static_cast<std::size_t>(length));
    p_ += length;
  }

  /// A string, decoded.
  std::string string() {
    expect('"');
    std::string out;
    for (;;) {
      const char* start = p_;
      while (p_ != end_) {
        const auto c = static_cast<unsigned char>(*p_);
        if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') break;
        ++p_;
      }
      out.append(start, static_cast<std::size_t>(p_ - start));
      if (p_ == end_) decline();
      const auto c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        ++p_;
        return out;
      }
      if (c == '\\') {
        escape(out);
      } else if (c < 0x20) {
        decline();  // a control character must be escaped
      } else {
        utf8(out);
      }
    }
  }

  static bool digit(char c) { return c >= '0' && c <= '9'; }

  /// A number, to the grammar of RFC 8259, converted as nlohmann::json converts it:
  /// integers to 64 bits (unsigned where not negative), others to the nearest double. One
  /// that does not fit (which nlohmann::json makes a double, or infinity) declines.
  Number number() {
    const char* start = p_;
    if (p_ != end_ && *p_ == '-') ++p_;
    if (p_ == end_) decline();
    if (*p_ == '0') {
      ++p_;
    } else if (*p_ >= '1' && *p_ <= '9') {
      while (p_ != end_ && digit(*p_)) ++p_;
    } else {
      decline();
    }
    bool integer = true;
    if (p_ != end_ && *p_ == '.') {
      integer = false;
      ++p_;
      if (p_ == end_ || !digit(*p_)) decline();
      while (p_ != end_ && digit(*p_)) ++p_;
    }
    if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
      integer = false;
      ++p_;
      if (p_ != end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (p_ == end_ || !digit(*p_)) decline();
      while (p_ != end_ && digit(*p_)) ++p_;
    }
    Number n;
    std::from_chars_result r{};
    if (!integer) {
      n.kind = Number::floating;
      r = std::from_chars(start, p_, n.d, std::chars_format::general);
    } else if (*start == '-') {
      n.kind = Number::signed_int;
      r = std::from_chars(start, p_, n.i);
    } else {
      r = std::from_chars(start, p_, n.u);
    }
    if (r.ec != std::errc() || r.ptr != p_) decline();
    return n;
  }

  void literal(const char* word, std::size_t length) {
    if (static_cast<std::size_t>(end_ - p_) < length || std::memcmp(p_, word, length) != 0) {
      decline();
    }
    p_ += length;
  }

  /// Any JSON value, as the document nlohmann::json would make of it (a key listed twice in
  /// an object keeps its last value).
  json value() {
    switch (peek()) {
      case '{': {
        open('{');
        json out = json::object();
        if (empty_container('}')) return out;
        auto& members = *out.get_ptr<json::object_t*>();
        do {
          skip_space();
          std::string name = string();
          colon();
          members.insert_or_assign(std::move(name), value());
          skip_space();
        } while (next_member('}'));
        return out;
      }
      case '[': {
        open('[');
        json out = json::array();
        if (empty_container(']')) return out;
        auto& elements = *out.get_ptr<json::array_t*>();
        do {
          skip_space();
          elements.push_back(value());
          skip_space();
        } while (next_member(']'));
        return out;
      }
      case '"':
        return string();
      case 't':
        literal("true", 4);
        return true;
      case 'f':
        literal("false", 5);
        return false;
      case 'n':
        literal("null", 4);
        return nullptr;
      default: {
        const Number n = number();
        if (n.kind == Number::unsigned_int) return json(n.u);
        if (n.kind == Number::signed_int) return json(n.i);
        return json(n.d);
      }
    }
  }

  // The typed fields: each declines where from_json() would throw, or would read the value
  // in a way not written here.

  std::string string_field() {
    if (peek() != '"') decline();
    return string();
  }

  /// As json_int(): an integer that fits in an int.
  int int_field() {
    const Number n = number();
    if (n.kind == Number::unsigned_int && n.u <= std::uint64_t{INT_MAX})
      return static_cast<int>(n.u);
    if (n.kind == Number::signed_int && n.i >= INT_MIN) return static_cast<int>(n.i);
    decline();
  }

  /// As json_time(): null for NaN, or a number.
  double time_field() {
    if (peek() == 'n') {
      literal("null", 4);
      return std::numeric_limits<double>::quiet_NaN();
    }
    const Number n = number();
    if (n.kind == Number::unsigned_int) return static_cast<double>(n.u);
    if (n.kind == Number::signed_int) return static_cast<double>(n.i);
    return n.d;
  }

  /// Reads the members of an object whose fields are `names`, each at most once, calling
  /// `field(index of the name)` at each value; returns the set of those seen, as bits.
  /// A name not in `names` declines.
  template <std::size_t N, class Field>
  unsigned fields(const std::string_view (&names)[N], Field&& field) {
    static_assert(N <= 32);
    if (peek() != '{') decline();
    open('{');
    unsigned seen = 0;
    if (empty_container('}')) return seen;
    do {
      skip_space();
      const std::string_view name = plain_key();
      colon();
      std::size_t k = 0;
      while (k < N && names[k] != name) ++k;
      if (k == N || (seen >> k & 1u)) decline();  // unknown, or listed twice
      seen |= 1u << k;
      field(k);
      skip_space();
    } while (next_member('}'));
    return seen;
  }

  void key(TuningKey& k) {
    static constexpr std::string_view names[] = {"arch",    "compiler", "device", "driver",
                                                 "factory", "params",   "version"};
    const unsigned seen = fields(names, [&](std::size_t field) {
      switch (field) {
        case 0:
          k.arch = string_field();
          break;
        case 1:
          k.compiler = string_field();
          break;
        case 2:
          k.device = string_field();
          break;
        case 3:
          k.driver_version = int_field();
          break;
        case 4:
          k.factory = string_field();
          break;
        case 5:
          k.params = value();
          break;
        default:
          k.version = int_field();
          break;
      }
    });
    if (seen != (1u << 7) - 1) decline();  // every field is required
  }

  void resources(CandidateResources& r) {
    static constexpr std::string_view names[] = {"blocks_per_sm",       "dynamic_shared_bytes",
                                                 "local_bytes",         "registers",
                                                 "static_shared_bytes", "threads_per_block"};
    int* const slots[] = {&r.blocks_per_sm, &r.dynamic_shared_bytes, &r.local_bytes,
                          &r.registers,     &r.static_shared_bytes,  &r.threads_per_block};
    const unsigned seen = fields(names, [&](std::size_t field) { *slots[field] = int_field(); });
    if (seen != (1u << 6) - 1) decline();  // every field is required
  }

  CandidateRecord candidate() {
    static constexpr std::string_view names[] = {"config", "reason", "resources",
                                                 "spread", "status", "time_us"};
    CandidateRecord c;
    const unsigned seen = fields(names, [&](std::size_t field) {
      switch (field) {
        case 0:
          c.config = value();
          break;
        case 1:
          c.reason = string_field();
          break;
        case 2:
          resources(c.resources);
          break;
        case 3:
          c.spread = time_field();
          break;
        case 4: {
          const auto status = candidate_status_names.parse(string_field());
          if (!status) decline();  // the general reader says which
          c.status = *status;
          break;
        }
        default:
          c.time_us = time_field();
          break;
      }
    });
    if ((seen & 1u) == 0 || (seen & 1u << 4) == 0) decline();  // config and status required
    return c;
  }

  /// An entry, at its value: read entirely here, or declined.
  TuningEntry entry() {
    static constexpr std::string_view names[] = {"best", "candidates", "device_features",
                                                 "key",  "policy",     "when"};
    TuningEntry e;
    const unsigned seen = fields(names, [&](std::size_t field) {
      switch (field) {
        case 0:
          e.best = value();
          break;
        case 1: {
          open('[');
          if (empty_container(']')) break;
          do {
            skip_space();
            e.candidates.push_back(candidate());
            skip_space();
          } while (next_member(']'));
          break;
        }
        case 2:
          e.device_features = value();
          break;
        case 3:
          key(e.key);
          break;
        case 4:
          e.policy = string_field();
          break;
        default:
          e.when = string_field();
          break;
      }
    });
    if ((seen & 0b1010u) != 0b1010u) decline();  // key and candidates required
    return e;
  }

  /// The "entries" object, at its value: each entry read here, or else as JSON and
  /// converted by from_json() as the general reader does.
  std::vector<Entry> entry_list() {
    open('{');
    std::vector<Entry> out;
    if (empty_container('}')) return out;
    do {
      skip_space();
      Entry& e = out.emplace_back();
      e.name = string();
      colon();
      const char* const start = p_;
      const int depth = depth_;
      try {
        e.entry = entry();
        e.ok = true;
      } catch (const FastReadDeclined&) {
        p_ = start;  // read it again, as the general reader does
        depth_ = depth;
        const json doc = value();  // declines the file where it is not JSON
        try {
          e.entry = TuningEntry();
          from_json(doc, e.entry);
          e.ok = true;
        } catch (const std::exception& error) {
          e.error = error.what();
        }
      }
      if (e.ok) e.id = e.entry.key.id();
      skip_space();
    } while (next_member('}'));
    return out;
  }

  const char* p_;
  const char* end_;
  int depth_;
};

/// parse_tuning_db(text)'s result, read by the fast reader; nullopt where the text is one it
/// leaves to the general reader (see the top of this file).
inline std::optional<ParsedTuningDb> parse_tuning_db_fast(std::string_view text) {
  std::vector<FastTuningReader::Entry> read;
  try {
    read = FastTuningReader(text, 0).database();
  } catch (const FastReadDeclined&) {
    return std::nullopt;
  }
  // From here on, as parse_tuning_db() does it: the entries in the order of their names
  // (JSON keeps the last value of a name listed twice), then each by its key's id.
  std::set<std::string> repeated;
  const auto by_name = [](const FastTuningReader::Entry& a, const FastTuningReader::Entry& b) {
    return a.name < b.name;
  };
  if (std::adjacent_find(read.begin(), read.end(), [&](const auto& a, const auto& b) {
        return !by_name(a, b);
      }) != read.end()) {
    std::stable_sort(read.begin(), read.end(), by_name);
    std::vector<FastTuningReader::Entry> last;
    for (std::size_t i = 0; i < read.size(); ++i) {
      if (i + 1 < read.size() && read[i + 1].name == read[i].name) {
        repeated.insert(read[i].name);
        continue;
      }
      last.push_back(std::move(read[i]));
    }
    read = std::move(last);
  }
  ParsedTuningDb out;
  for (const auto& name : repeated) {
    out.duplicates.push_back("the entry " + printable(name, 100) +
                             " is listed more than once; kiln keeps the last one");
  }
  // The name each id came from, kept only once an id comes twice (a file kiln wrote has
  // none): then filled in for the entries before.
  std::map<std::string, std::string> name_of;
  bool naming = false;
  for (std::size_t i = 0; i < read.size(); ++i) {
    auto& e = read[i];
    if (!e.ok) {
      if (out.damaged++ == 0) {
        out.first_damage = "the entry " + printable(e.name, 100) + ": " + printable(e.error);
      }
      continue;
    }
    if (!out.entries.empty() && out.entries.rbegin()->first < e.id) {  // the usual case
      if (naming) name_of.emplace(e.id, e.name);
      out.entries.emplace_hint(out.entries.end(), e.id, std::move(e.entry));
      continue;
    }
    if (!naming && out.entries.contains(e.id)) {
      naming = true;
      for (std::size_t j = 0; j < i; ++j) {
        if (read[j].ok) name_of.insert_or_assign(read[j].id, read[j].name);
      }
    }
    if (naming) {
      if (const auto seen = name_of.find(e.id); seen != name_of.end()) {
        out.duplicates.push_back("the entries " + printable(seen->second, 100) + " and " +
                                 printable(e.name, 100) + " are the same problem; kiln keeps " +
                                 printable(e.name, 100));
      }
      name_of.insert_or_assign(e.id, e.name);
    }
    out.entries.insert_or_assign(e.id, std::move(e.entry));
  }
  return out;
}

/// What parse_tuning_db(text) gives, read by the fast reader where it can.
inline ParsedTuningDb read_tuning_db(std::string_view text) {
  if (auto fast = parse_tuning_db_fast(text)) return std::move(*fast);
  return parse_tuning_db(text);
}

/// What apply_journal() does, each line read by the fast reader where it can.
inline void apply_journal_fast(std::string_view text, TuningEntries& entries,
                               JournalDamage& damage) {
  while (!text.empty()) {
    const auto end = text.find('\n');
    if (end == text.npos) break;
    try {
      FastTuningReader(text.substr(0, end), 0).journal_line(entries);
    } catch (const FastReadDeclined&) {
      apply_journal(text.substr(0, end + 1), entries, damage);
    }
    text.remove_prefix(end + 1);
  }
}

}  // namespace kiln::factory::detail
