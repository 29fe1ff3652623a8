#pragma once

/// `tessera modules --check PATH.so`: what a vendor needs to know about one module library
/// before shipping it, without starting anything.

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace tessera::kernel::cli {

/// One field of a build fingerprint as the module and this tessera have it.
struct FingerprintField {
  std::string key;
  std::string module;  ///< empty when the module lacks the field
  std::string here;    ///< empty when this tessera does not know the field
  bool same() const { return module == here; }
};

/// The union of the fields of both fingerprints (this tessera's order first, then the module's
/// extra ones), each with both values.
std::vector<FingerprintField> compareFingerprints(std::string_view module, std::string_view here);

/// What to do about one differing field: "rebuild with C++20 (CMAKE_CXX_STANDARD 20), as this
/// tessera was built".
std::string rebuildHint(const FingerprintField& field);

/// Opens the library at `path` (RTLD_NOW|RTLD_LOCAL, never closed) and prints to `out` its
/// descriptor (kind, name, api version, description, author), its fingerprint compared field
/// by field with this binary's, and a verdict line. Creates nothing. Returns 0 when the kernel
/// would load it, else 1; the verdict names the reason and what to rebuild: `refused:
/// api_version 4, this tessera takes 5: rebuild the module against this tessera's SDK`.
int checkModuleLibrary(const std::string& path, std::ostream& out);

}  // namespace tessera::kernel::cli
