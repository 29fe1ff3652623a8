#pragma once

// Private to libtessera_api: what the three resources*.cc files share (not installed, not in the
// API hash). resources_values.cc: one resource's value (fixed-point scalars, ranges, names,
// reservations, the canonical form); resources_codec.cc: the text, JSON and protobuf forms;
// resources.cc: the sorted collection and its arithmetic. Hidden like every symbol of the
// library that is not marked TESSERA_API.

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "tessera/api/resources.h"
#include "tessera/api/status.h"

namespace tessera::api::resources_internal {

using Entry = Resources::Entry;

inline constexpr std::string_view kSpaces = " \t\r\n\v\f";
inline constexpr std::string_view kReservedChars = "*,;:()[]{}";
inline constexpr int64_t kMaxMillis = std::numeric_limits<int64_t>::max();

// ---- Text ----------------------------------------------------------------------------------

std::string_view trim(std::string_view text);
bool hasSpace(std::string_view text);
std::vector<std::string_view> split(std::string_view text, char separator);

// ---- Scalars -------------------------------------------------------------------------------

/// Parses `digits[.digits]` exactly into thousandths (see resources_values.cc).
Status parseMillis(std::string_view text, int64_t* millis);
/// Mesos's own conversion of a double to its fixed-point form.
Status millisFromDouble(double value, int64_t* millis);
void appendMillis(std::string& out, int64_t millis);

// ---- Ranges --------------------------------------------------------------------------------

/// Sorts `ranges`, rejects inverted and overlapping ones, coalesces adjacent ones.
Status normalizeRanges(std::vector<ValueRange>& ranges);
/// Of sorted, coalesced ranges; the result is sorted and coalesced.
std::vector<ValueRange> unionRanges(const std::vector<ValueRange>& a,
                                    const std::vector<ValueRange>& b);
std::vector<ValueRange> subtractRanges(const std::vector<ValueRange>& a,
                                       const std::vector<ValueRange>& b);
bool containsRanges(const std::vector<ValueRange>& a, const std::vector<ValueRange>& b);

// ---- Names and reservations ----------------------------------------------------------------

std::string_view reservationTypeName(ReservationType type);
/// Validates an entry built by a parser and puts its value in canonical form.
Status finishEntry(Entry& entry);
/// The reservations of a resource given `defaultRole`: none for "*", else a static one.
std::vector<Reservation> defaultReservations(std::string_view defaultRole);

}  // namespace tessera::api::resources_internal
