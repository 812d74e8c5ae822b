#pragma once
/// JSON of gen's types, so that a factory's Params and Configs can hold them: a DType is
/// its short name ("f16"). Reading an unknown name throws kiln::Error listing the names.
///
///   struct Params { kiln::gen::DType dtype; int cols; };
///   NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Params, dtype, cols)   // {"dtype": "f16", ...}

#include <string>

#include <nlohmann/json.hpp>

#include "../error.hpp"
#include "../gen/dtype.hpp"

namespace nlohmann {
template <>
struct adl_serializer<kiln::gen::DType> {
  static void to_json(json& j, kiln::gen::DType t) { j = std::string(kiln::gen::to_string(t)); }
  static void from_json(const json& j, kiln::gen::DType& t) {
    const std::string name = j.is_string() ? j.get<std::string>() : j.dump();
    std::string names;
    for (kiln::gen::DType d : kiln::gen::all_dtypes) {
      if (kiln::gen::to_string(d) == name) {
        t = d;
        return;
      }
      names += (names.empty() ? "" : ", ") + std::string(kiln::gen::to_string(d));
    }
    throw kiln::Error("kiln: '" + name + "' is not a kiln::gen::DType; use one of " + names);
  }
};
}  // namespace nlohmann
