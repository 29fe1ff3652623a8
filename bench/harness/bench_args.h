#pragma once

#include <string>

namespace tessera::bench {

/// The value of `--name=value` among a bench program's arguments, "true" for a bare `--name`,
/// or `fallback` when it is not given.
inline std::string flag(int argc, char** argv, const std::string& name,
                        const std::string& fallback) {
  const std::string prefix = "--" + name + "=";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind(prefix, 0) == 0) return arg.substr(prefix.size());
    if (arg == "--" + name) return "true";
  }
  return fallback;
}

}  // namespace tessera::bench
