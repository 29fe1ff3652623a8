#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/api/module.h"
#include "tessera/api/status.h"

namespace tessera::kernel::modules {

/// One module asked for by a manifest, its library resolved to a path (or a bare `libX.so`
/// left to the dynamic loader's search).
struct ManifestEntry {
  std::string library;  ///< the library to open
  std::string module;   ///< the module's name, as the descriptor must name it too
  api::Parameters parameters;
  std::string origin;  ///< the manifest it came from: a path, or "--modules" for inline JSON
  /// Short names the manifest gives it (`"aliases": ["basic"]`): a flag naming a module of a
  /// kind may use one instead of the full name, so the kernel names no concrete module.
  std::vector<std::string> aliases;
};

/// Parses one manifest in Mesos's modules.json shape. Relative `file` paths are taken relative
/// to `baseDir`; `name: "foo"` becomes libfoo.so, looked up in `searchPath` and otherwise left
/// to the dynamic loader. Errors: InvalidArgument naming `origin` and what is wrong; text that
/// is not UTF-8 (a binary) is "not valid JSON", and no error message quotes the input's bytes
/// unescaped.
api::Result<std::vector<ManifestEntry>> parseManifest(
    std::string_view json, std::string_view origin, const std::filesystem::path& baseDir,
    const std::vector<std::filesystem::path>& searchPath);

/// Where the manifests come from, as the flags say.
struct ManifestFlags {
  std::optional<std::string> modules;     ///< --modules: a path, file://path or inline JSON
  std::optional<std::string> modulesDir;  ///< --modules_dir: every *.json in it, alphabetically
  std::filesystem::path defaultManifest;  ///< used when neither flag is given (may not exist)
};

/// Reads every manifest the flags name. Errors: InvalidArgument when both flags are given, a
/// file cannot be read or is larger than 1 MiB, or a manifest is malformed (naming the file).
api::Result<std::vector<ManifestEntry>> readManifests(
    const ManifestFlags& flags, const std::vector<std::filesystem::path>& searchPath);

}  // namespace tessera::kernel::modules
