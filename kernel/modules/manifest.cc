#include "kernel/modules/manifest.h"

#include <fmt/format.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <fstream>
#include <optional>
#include <sstream>

#include "kernel/runtime/strings.h"
#include "tessera/api/json.h"
#include "tessera/v1/messages.pb.h"

namespace tessera::kernel::modules {

namespace fs = std::filesystem;

namespace {

/// A manifest lists a few libraries; one larger than this is not a manifest (`--modules`
/// pointing at a binary, or at /dev/zero) and is refused before it is read whole.
constexpr size_t kMaxManifestBytes = 1024 * 1024;

/// The offset of the first byte that is not valid UTF-8 (or is NUL, which no JSON text holds
/// outside a string, and no manifest inside one); nullopt if there is none.
std::optional<size_t> firstNonTextByte(std::string_view text) {
  const size_t bad = std::min(api::findInvalidUtf8(text), text.find('\0'));
  if (bad == std::string_view::npos) return std::nullopt;
  return bad;
}

/// The error for a manifest that is not text at all (a binary named by mistake), refused before
/// the JSON parser sees it, whose message would quote the bytes around the error as they are.
std::optional<api::Status> notJsonText(std::string_view origin, std::string_view text) {
  std::optional<size_t> bad = firstNonTextByte(text);
  if (!bad) return std::nullopt;
  return api::invalidArgument(
      "modules manifest '{}' is not valid JSON: byte {} is not UTF-8 text (it starts \"{}\")",
      origin, *bad, runtime::printable(text, 16));
}

api::Result<std::string> readFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return api::invalidArgument("cannot read modules manifest '{}'", path.string());
  std::string content(kMaxManifestBytes + 1, '\0');
  in.read(content.data(), static_cast<std::streamsize>(content.size()));
  if (in.bad()) return api::invalidArgument("cannot read modules manifest '{}'", path.string());
  content.resize(static_cast<size_t>(in.gcount()));
  if (content.size() > kMaxManifestBytes) {
    if (auto bad = notJsonText(path.string(), content)) return *bad;
    return api::invalidArgument("modules manifest '{}' is larger than {} bytes: not a manifest",
                                path.string(), kMaxManifestBytes);
  }
  return content;
}

std::string resolveByName(const std::string& name, const std::vector<fs::path>& searchPath) {
  std::string file = "lib" + name + ".so";
  for (const auto& dir : searchPath) {
    std::error_code ec;
    if (fs::exists(dir / file, ec)) return (dir / file).string();
  }
  return file;  // left to the dynamic loader's own search (LD_LIBRARY_PATH, ld.so.cache)
}

}  // namespace

api::Result<std::vector<ManifestEntry>> parseManifest(std::string_view json,
                                                      std::string_view origin,
                                                      const fs::path& baseDir,
                                                      const std::vector<fs::path>& searchPath) {
  if (auto bad = notJsonText(origin, json)) return *bad;
  v1::Modules manifest;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;  // a misspelt key is an error, not a silent no-op
  auto parsed = google::protobuf::util::JsonStringToMessage(std::string(json), &manifest, options);
  if (!parsed.ok()) {
    // protobuf's message quotes the text around the error: escaped, and not too much of it.
    return api::invalidArgument("modules manifest '{}' is malformed: {}", origin,
                                runtime::printable(std::string(parsed.message()), 200));
  }
  std::vector<ManifestEntry> entries;
  for (int i = 0; i < manifest.libraries_size(); ++i) {
    const auto& library = manifest.libraries(i);
    if (library.has_file() == library.has_name()) {
      return api::invalidArgument(
          "modules manifest '{}': libraries[{}] needs exactly one of 'file' and 'name'", origin, i);
    }
    std::string path;
    if (library.has_file()) {
      if (library.file().empty()) {
        return api::invalidArgument("modules manifest '{}': libraries[{}] has an empty 'file'",
                                    origin, i);
      }
      fs::path file(library.file());
      path = (file.is_relative() ? baseDir / file : file).lexically_normal().string();
    } else {
      if (library.name().empty() || library.name().find('/') != std::string::npos) {
        return api::invalidArgument("modules manifest '{}': libraries[{}] has a bad 'name' '{}'",
                                    origin, i, library.name());
      }
      path = resolveByName(library.name(), searchPath);
    }
    if (library.modules_size() == 0) {
      return api::invalidArgument("modules manifest '{}': library '{}' lists no modules", origin,
                                  path);
    }
    for (int j = 0; j < library.modules_size(); ++j) {
      const auto& module = library.modules(j);
      if (module.name().empty()) {
        return api::invalidArgument(
            "modules manifest '{}': libraries[{}].modules[{}] has no 'name'", origin, i, j);
      }
      std::vector<std::pair<std::string, std::string>> parameters;
      for (const auto& parameter : module.parameters()) {
        if (parameter.key().empty()) {
          return api::invalidArgument(
              "modules manifest '{}': module '{}' has a parameter with no "
              "'key'",
              origin, module.name());
        }
        parameters.emplace_back(parameter.key(), parameter.value());
      }
      std::vector<std::string> aliases;
      for (const auto& alias : module.aliases()) {
        if (alias.empty()) {
          return api::invalidArgument("modules manifest '{}': module '{}' has an empty alias",
                                      origin, module.name());
        }
        aliases.push_back(alias);
      }
      entries.push_back(ManifestEntry{path, module.name(), api::Parameters(std::move(parameters)),
                                      std::string(origin), std::move(aliases)});
    }
  }
  return entries;
}

api::Result<std::vector<ManifestEntry>> readManifests(const ManifestFlags& flags,
                                                      const std::vector<fs::path>& searchPath) {
  if (flags.modules && flags.modulesDir) {
    return api::invalidArgument("flags '--modules' and '--modules_dir' are mutually exclusive");
  }
  std::vector<ManifestEntry> all;
  auto addFile = [&](const fs::path& path) -> api::Status {
    auto text = readFile(path);
    if (!text) return text.status();
    auto entries = parseManifest(*text, path.string(), path.parent_path(), searchPath);
    if (!entries) return entries.status();
    all.insert(all.end(), entries->begin(), entries->end());
    return api::Status::ok();
  };

  if (flags.modules) {
    std::string value(runtime::trim(*flags.modules));
    if (value.rfind("file://", 0) == 0) value = value.substr(7);
    if (!value.empty() && value.front() == '{') {
      auto entries = parseManifest(value, "--modules", fs::current_path(), searchPath);
      if (!entries) return entries.status();
      return entries;
    }
    if (auto status = addFile(value); !status) return status;
    return all;
  }
  if (flags.modulesDir) {
    std::error_code ec;
    if (!fs::is_directory(*flags.modulesDir, ec)) {
      return api::invalidArgument("flag '--modules_dir': '{}' is not a directory",
                                  *flags.modulesDir);
    }
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(*flags.modulesDir, ec)) {
      if (entry.path().extension() == ".json") files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& file : files) {
      if (auto status = addFile(file); !status) return status;
    }
    return all;
  }
  std::error_code ec;
  if (!flags.defaultManifest.empty() && fs::exists(flags.defaultManifest, ec)) {
    if (auto status = addFile(flags.defaultManifest); !status) return status;
  }
  return all;
}

}  // namespace tessera::kernel::modules
