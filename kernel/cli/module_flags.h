#pragma once

/// Which of the agent's module flags reach which module. The kernel names no concrete module:
/// a flag `<family>_<rest>` (`docker_socket`, `cgroups_root`) belongs to the module of a kind
/// that `<family>` selects, the same way `--containerizers=<family>` selects a containerizer.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tessera::kernel::cli {

/// A flag handed to a module as a parameter: {name, value}.
using ModuleFlag = std::pair<std::string, std::string>;

/// True if the name `entry` (as in `--containerizers=docker`) selects the module `moduleName`
/// of `kind`: the name itself, or one ending in `<kind>_<entry>` (`docker` selects
/// `com_example_containerizer_docker`).
bool selects(std::string_view kind, std::string_view entry, std::string_view moduleName);

/// The flags of `flags` meant for `moduleName` of `kind`: those whose family (the text before
/// the first `_`) selects it. Flags without a `_` are meant for none; shared ones (e.g.
/// `isolation`) are the caller's to add.
std::vector<ModuleFlag> flagsFor(std::string_view kind, std::string_view moduleName,
                                 const std::vector<ModuleFlag>& flags);

}  // namespace tessera::kernel::cli
