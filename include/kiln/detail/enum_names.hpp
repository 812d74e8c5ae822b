#pragma once
/// Names for the values of an enum, written once as a table and used both ways: kiln's
/// one mechanism behind every `to_string(enum)` and every parse of an enum's name.
///
///   enum class TunePolicy { off, model, full };
///   inline constexpr auto tune_policy_names = kiln::detail::enum_names<TunePolicy>(
///       {{TunePolicy::off, "off"}, {TunePolicy::model, "model"}, {TunePolicy::full, "full"}});
///
///   tune_policy_names.name(TunePolicy::model);  // "model"
///   tune_policy_names.parse("full");            // TunePolicy::full (nullopt: no such name)
///   tune_policy_names.choices();                // "off, model or full", for error messages

#include <array>
#include <cstddef>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>

namespace kiln::detail {

/// The names of `items` (`name(item)` each), for messages: "a, b or c" (`last` joins the
/// last two). EnumNames::choices, and any other table of named things.
template <class Range, class Name>
std::string choices_of(const Range& items, Name&& name, std::string_view last = " or ") {
  const std::size_t n = std::size(items);
  std::string out;
  std::size_t i = 0;
  for (const auto& item : items) {
    if (i > 0) out += i + 1 == n ? last : std::string_view(", ");
    out += name(item);
    ++i;
  }
  return out;
}

/// One value of an enum and its name.
template <class E>
struct EnumName {
  E value;
  const char* name;
};

/// The names of the values of enum `E` (a constexpr table of N entries).
template <class E, std::size_t N>
struct EnumNames {
  std::array<EnumName<E>, N> entries;

  /// The name of `value`; "?" for a value the table lacks (a cast from an int).
  constexpr const char* name(E value) const {
    for (const auto& e : entries) {
      if (e.value == value) return e.name;
    }
    return "?";
  }

  /// The value named `text` (exactly, letter case included), or nullopt.
  constexpr std::optional<E> parse(std::string_view text) const {
    for (const auto& e : entries) {
      if (text == e.name) return e.value;
    }
    return std::nullopt;
  }

  /// Every name, for messages: "a, b or c" (`last` joins the last two).
  std::string choices(std::string_view last = " or ") const {
    return choices_of(
        entries, [](const EnumName<E>& e) { return e.name; }, last);
  }
};

/// Builds an EnumNames table from a braced list of {value, "name"} pairs.
template <class E, std::size_t N>
constexpr EnumNames<E, N> enum_names(const EnumName<E> (&entries)[N]) {
  EnumNames<E, N> out{};
  for (std::size_t i = 0; i < N; ++i) out.entries[i] = entries[i];
  return out;
}

}  // namespace kiln::detail
