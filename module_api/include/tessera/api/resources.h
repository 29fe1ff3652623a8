#pragma once

/// Resources: the value type for what agents have and frameworks are offered (cpus, mem, disk,
/// ports, gpus, ...). It follows Mesos's `Resources` semantics with a compact representation
/// made for the allocator's hot path.
///
/// Representation. A sorted vector of entries, one per (name, type, reservation stack), with
/// no empty entries. Scalars are fixed-point: an int64 count of thousandths ("millis"), so
/// `0.1 + 0.2 - 0.3` is exactly zero and sums never drift; 3 decimals is Mesos's resolution.
/// Ranges are kept sorted and coalesced (`[1-3,4-5]` is `[1-5]`), sets sorted and unique. The
/// form is canonical, so equality is semantic and `+=`, `-=`, `contains` are linear merges of
/// two sorted vectors that allocate nothing for scalars.
///
/// Text form (Mesos's `--resources` syntax, extended where Mesos has none):
///
///     resources   := resource (";" resource)*          (empty tokens and spaces are ignored)
///     resource    := name [ "(" reservation ")" ] ":" value
///     value       := scalar | "[" range ("," range)* "]" | "{" item ("," item)* "}"
///     scalar      := digits ["." digits]                (rounded to nearest 0.001)
///     range       := integer "-" integer | integer      ("5" means "5-5")
///     reservation := role                               static reservation; "*" = unreserved
///                  | role "," principal                 dynamic reservation by principal
///                  | "reservations: [" stack "]"        Mesos's printed form, for refinements
///     stack       := "(" TYPE "," role ["," principal] ")" ("," "(" ... ")")*   outermost first
///
/// Examples: `cpus:2;mem:1024;disk:4096;ports:[31000-32000];gpus:0`, `cpus(ops):2` (static
/// reservation for role ops), `cpus(ops,alice):2` (dynamic reservation for ops by principal
/// alice; Mesos before reservation refinement printed it this way), `zones:{a,b}`,
/// `cpus(reservations: [(STATIC,eng),(DYNAMIC,eng/web,alice)]):1` (a refined reservation, as
/// Mesos prints it). `toString()` prints the shortest of these forms that parses back to the
/// same value, joined with ";" and without spaces; the empty value prints as "".
///
/// Roles may be hierarchical (`eng/web`): components are non-empty, not "." or "..", do not
/// start with '-', and contain no whitespace or any of `*,;:()[]{}`. Names contain none of
/// those characters or whitespace either; set items no `,;{}` and no leading or trailing
/// space. Principals in the text form contain no `,()`. Reservation labels and allocation
/// info are not kept (not needed by the allocator yet).

#include <google/protobuf/repeated_ptr_field.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/api/status.h"
#include "tessera/api/visibility.h"
#include "tessera/v1/messages.pb.h"

namespace tessera::api {

/// Fixed-point scale of scalar resources: a scalar is stored as value * kScalarScale.
inline constexpr int64_t kScalarScale = 1000;

/// The kind of value a resource has. TEXT (which Mesos attributes have) is not a resource type.
enum class ResourceType : uint8_t { kScalar = 0, kRanges = 1, kSet = 2 };

/// Static reservations come from an agent's configuration, dynamic ones from an operator or a
/// framework (with the principal that made them).
enum class ReservationType : uint8_t { kStatic = 0, kDynamic = 1 };

/// An inclusive range of integers, e.g. ports 31000-32000.
struct ValueRange {
  uint64_t begin = 0;
  uint64_t end = 0;
  auto operator<=>(const ValueRange&) const = default;
};

/// One level of a reservation stack (Mesos's `Resource.ReservationInfo`).
struct Reservation {
  /// The role reserved for; never "*".
  std::string role;
  ReservationType type = ReservationType::kStatic;
  /// Who made a dynamic reservation; empty when none was recorded.
  std::string principal;
  auto operator<=>(const Reservation&) const = default;
};

/// A bag of resources with Mesos semantics. A value type: cheap to move, copies its entries.
/// Not thread-safe; confine each instance to one strand, as everything else.
class TESSERA_API Resources {
 public:
  /// One resource of one kind and one reservation stack. Only `Resources` creates these, and
  /// keeps them valid: never empty, values normalised, reservations validated.
  struct Entry {
    std::string name;
    ResourceType type = ResourceType::kScalar;
    /// Outermost first; empty means unreserved. The last one is the reservation's role.
    std::vector<Reservation> reservations;
    /// kScalar only: the value in thousandths, always > 0.
    int64_t millis = 0;
    /// kRanges only: sorted, coalesced, non-empty.
    std::vector<ValueRange> ranges;
    /// kSet only: sorted, unique, non-empty.
    std::vector<std::string> items;

    bool operator==(const Entry&) const = default;
    /// True if reserved to any role.
    bool isReserved() const { return !reservations.empty(); }
    /// The role the entry is reserved to (the innermost reservation), or "*" if unreserved.
    std::string_view reservationRole() const {
      return reservations.empty() ? std::string_view("*")
                                  : std::string_view(reservations.back().role);
    }
  };

  /// No resources.
  Resources() = default;

  /// Parses the text form described at the top of this file, or, if the text starts with '['
  /// (after spaces), Mesos's JSON form: an array of v1 `Resource` objects such as
  /// `[{"name":"cpus","type":"SCALAR","scalar":{"value":2}}]`. Resources that name no role get
  /// `defaultRole` ("*": unreserved; another role: a static reservation for it). Equal kinds
  /// are added up (`cpus:1;cpus:2` is `cpus:3`). Errors: InvalidArgument naming the bad
  /// token, e.g. `bad resource 'cpus:abc': 'abc' is not a number`; an invalid `defaultRole`.
  static Result<Resources> parse(std::string_view text, std::string_view defaultRole = "*");

  /// Converts v1 protobuf resources, in the pre- (`role`) or post-refinement (`reservations`)
  /// format; a resource with neither is unreserved. Scalars are rounded to the nearest 0.001.
  /// Errors: InvalidArgument naming the resource and its index, for the same rules as parse().
  static Result<Resources> fromProto(
      const google::protobuf::RepeatedPtrField<tessera::v1::Resource>& resources);

  /// A single unreserved scalar resource of `millis` thousandths (nothing if millis <= 0).
  /// Errors: none; `name` is not validated (use parse() for untrusted input).
  static Resources ofScalar(std::string_view name, int64_t millis);

  /// The text form (see the top of this file); parse(toString()) gives back an equal value.
  std::string toString() const;

  /// Mesos's JSON array form, post-refinement (`reservations`, no `role`), e.g.
  /// `[{"name":"ports","type":"RANGES","ranges":{"range":[{"begin":1,"end":3}]}}]`.
  std::string toJson() const;

  /// v1 protobuf resources, post-refinement format (`reservations` set, `role` left unset).
  google::protobuf::RepeatedPtrField<tessera::v1::Resource> toProto() const;

  /// True if there are no resources.
  bool empty() const { return entries_.empty(); }
  /// How many entries (kinds x reservation stacks) there are.
  size_t size() const { return entries_.size(); }
  /// The entries, sorted by (name, type, reservations); valid until the next mutation.
  std::span<const Entry> entries() const { return entries_; }

  /// Calls `fn(std::string_view name, int64_t millis)` for every scalar entry, in name order.
  /// A name appears once per reservation stack it has (unreserved first). Allocates nothing.
  template <typename Fn>
  void forEachScalar(Fn&& fn) const {
    for (const Entry& entry : entries_) {
      if (entry.type == ResourceType::kScalar) fn(std::string_view(entry.name), entry.millis);
    }
  }

  /// Adds `other`: scalars sum (stopping at INT64_MAX thousandths rather than overflowing),
  /// ranges and sets unite. Entries with different reservations
  /// stay apart.
  Resources& operator+=(const Resources& other);
  /// Subtracts `other` with Mesos semantics: only what is there is removed (range and set
  /// differences); a scalar that would become zero or negative is dropped; entries of
  /// `other` that match nothing (by name, type and reservations) are ignored.
  Resources& operator-=(const Resources& other);
  /// `a + b`, see operator+=.
  friend Resources operator+(Resources left, const Resources& right) { return left += right; }
  /// `a - b`, see operator-=.
  friend Resources operator-(Resources left, const Resources& right) { return left -= right; }

  /// True if every entry of `other` is covered by the entry with the same name, type and
  /// reservations here (a larger scalar, a superset of ranges or items). Unreserved resources
  /// do not contain reserved ones, nor the reverse; flatten() first to compare amounts.
  bool contains(const Resources& other) const;

  /// Semantic equality (the representation is canonical).
  bool operator==(const Resources& other) const = default;

  /// The same amounts with every reservation replaced: unreserved if `role` is "*", else one
  /// static reservation for `role`. The caller passes a valid role (not checked).
  Resources flatten(std::string_view role = "*") const;

  /// Only the reserved entries, to any role.
  Resources reserved() const;
  /// Only the entries reserved to exactly `role` (their innermost reservation).
  Resources reserved(std::string_view role) const;
  /// Only the unreserved entries.
  Resources unreserved() const;
  /// What a framework in `role` may be offered: unreserved entries, and those reserved to
  /// `role` or to one of its ancestors (`eng` for `eng/web`), as in Mesos.
  Resources allocatableTo(std::string_view role) const;

  /// The total of scalar `name` across all reservations, in thousandths; 0 if absent.
  int64_t scalarMillis(std::string_view name) const;
  /// The total of scalar `name` across all reservations; 0 if absent.
  double scalar(std::string_view name) const;
  /// scalar("cpus").
  double cpus() const { return scalar("cpus"); }
  /// scalar("mem"), in MB.
  double mem() const { return scalar("mem"); }
  /// scalar("disk"), in MB.
  double disk() const { return scalar("disk"); }
  /// scalar("gpus").
  double gpus() const { return scalar("gpus"); }
  /// The union of range resource `name` across all reservations, sorted and coalesced.
  std::vector<ValueRange> ranges(std::string_view name) const;
  /// ranges("ports").
  std::vector<ValueRange> ports() const { return ranges("ports"); }

 private:
  // Adds one normalised entry at its sorted place, merging with an equal-keyed one.
  void add(Entry&& entry);

  std::vector<Entry> entries_;
};

/// True if `role` is a strict descendant of `ancestor` in the role hierarchy
/// (`eng/web` of `eng`, not `eng` of `eng`, not `engineering` of `eng`).
TESSERA_API bool isStrictSubrole(std::string_view role, std::string_view ancestor);

/// Checks a role name by the rules at the top of this file ("*" is valid).
/// Errors: InvalidArgument saying what is wrong, e.g. `role 'a//b' has an empty component`.
TESSERA_API Status validateRole(std::string_view role);

}  // namespace tessera::api
