#include "tessera/api/json.h"

#include <fmt/format.h>

#include <iterator>

namespace tessera::api {

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// The length of the well-formed UTF-8 sequence at `text[pos]` (1 to 4), or, when it is
// ill-formed, 0 with `*bad` set to the length of its maximal ill-formed subpart (at least 1): the
// bytes to replace by one U+FFFD. The second byte's range depends on the first (Unicode's table
// 3-7), which rules out overlong forms, surrogates and code points above U+10FFFF.
size_t sequenceAt(std::string_view text, size_t pos, size_t* bad) {
  auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  unsigned char lead = byte(pos);
  if (lead < 0x80) return 1;
  size_t length = 0;
  unsigned char low = 0x80;
  unsigned char high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;
    if (lead == 0xED) high = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;
  } else {
    *bad = 1;
    return 0;
  }
  for (size_t i = 1; i < length; ++i) {
    if (pos + i >= text.size()) {
      *bad = i;
      return 0;
    }
    unsigned char c = byte(pos + i);
    bool ok = i == 1 ? (c >= low && c <= high) : (c >= 0x80 && c <= 0xBF);
    if (!ok) {
      *bad = i;
      return 0;
    }
  }
  return length;
}

// Appends the UTF-8 sequence at `text[pos]`, or U+FFFD for its maximal ill-formed subpart;
// returns the position after what it consumed.
size_t appendValidSequence(std::string& out, std::string_view text, size_t pos) {
  size_t bad = 0;
  size_t length = sequenceAt(text, pos, &bad);
  if (length == 0) {
    out += kReplacement;
    return pos + bad;
  }
  out.append(text.substr(pos, length));
  return pos + length;
}

}  // namespace

void appendJsonString(std::string& out, std::string_view text) {
  out += '"';
  for (size_t i = 0; i < text.size();) {
    char c = text[i];
    if (static_cast<unsigned char>(c) >= 0x80) {
      i = appendValidSequence(out, text, i);
      continue;
    }
    ++i;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          fmt::format_to(std::back_inserter(out), "\\u{:04x}",
                         static_cast<unsigned>(static_cast<unsigned char>(c)));
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

std::string jsonQuote(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  appendJsonString(out, text);
  return out;
}

size_t findInvalidUtf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    if (static_cast<unsigned char>(text[i]) < 0x80) {
      ++i;
      continue;
    }
    size_t bad = 0;
    size_t length = sequenceAt(text, i, &bad);
    if (length == 0) return i;
    i += length;
  }
  return std::string_view::npos;
}

bool isValidUtf8(std::string_view text) { return findInvalidUtf8(text) == std::string_view::npos; }

std::string toValidUtf8(std::string_view text) {
  size_t first = findInvalidUtf8(text);
  if (first == std::string_view::npos) return std::string(text);
  std::string out(text.substr(0, first));
  for (size_t i = first; i < text.size();) i = appendValidSequence(out, text, i);
  return out;
}

}  // namespace tessera::api
