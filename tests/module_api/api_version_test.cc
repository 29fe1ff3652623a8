// Fails when the module interface changes without an API version bump: the headers under
// module_api/include/tessera/api and the protos, with comments and white space taken out, must
// hash to what module_api/api_versions.txt records for kApiVersion.
#include <Poco/DigestEngine.h>
#include <Poco/SHA2Engine.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "tessera/api/module.h"

namespace {

namespace fs = std::filesystem;

// Drops // and /* */ comments and all white space: documentation edits need no bump.
std::string significant(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text.compare(i, 2, "//") == 0) {
      i = text.find('\n', i);
      if (i == std::string::npos) break;
      continue;
    }
    if (text.compare(i, 2, "/*") == 0) {
      i = text.find("*/", i);
      if (i == std::string::npos) break;
      ++i;
      continue;
    }
    if (text[i] == '"') {  // keep string literals whole, "//" inside them included
      size_t end = i + 1;
      while (end < text.size() && text[end] != '"') end += (text[end] == '\\') ? 2 : 1;
      out += text.substr(i, end - i + 1);
      i = end;
      continue;
    }
    if (!std::isspace(static_cast<unsigned char>(text[i]))) out += text[i];
  }
  return out;
}

std::string interfaceHash() {
  const fs::path root = fs::path(TESSERA_SOURCE_DIR) / "module_api";
  std::vector<fs::path> files;
  for (const auto& dir :
       {root / "include" / "tessera" / "api", root / "proto" / "tessera" / "v1"}) {
    for (const auto& entry : fs::directory_iterator(dir)) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  Poco::SHA2Engine sha(Poco::SHA2Engine::SHA_256);
  for (const auto& file : files) {
    std::ifstream in(file);
    std::stringstream text;
    text << in.rdbuf();
    sha.update(fs::relative(file, root).string());
    sha.update(significant(text.str()));
  }
  return Poco::DigestEngine::digestToHex(sha.digest());
}

std::map<uint32_t, std::string> recordedHashes() {
  std::ifstream in(fs::path(TESSERA_SOURCE_DIR) / "module_api" / "api_versions.txt");
  std::map<uint32_t, std::string> hashes;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    uint32_t version;
    std::string hash;
    if (fields >> version >> hash) hashes[version] = hash;
  }
  return hashes;
}

TEST(ApiVersionTest, InterfaceChangesBumpTheVersion) {
  const std::string hash = interfaceHash();
  const auto recorded = recordedHashes();
  auto it = recorded.find(tessera::api::kApiVersion);
  ASSERT_NE(it, recorded.end()) << "module_api/api_versions.txt records no hash for API version "
                                << tessera::api::kApiVersion << "; add the line '"
                                << tessera::api::kApiVersion << " " << hash << "'";
  EXPECT_EQ(it->second, hash)
      << "the module interface changed but kApiVersion is still " << tessera::api::kApiVersion
      << ": bump kApiVersion in module_api/include/tessera/api/module.h and add the line '"
      << tessera::api::kApiVersion + 1 << " " << hash << "' to module_api/api_versions.txt";
  // Versions only grow: nothing newer than the current one may be recorded.
  EXPECT_EQ(recorded.rbegin()->first, tessera::api::kApiVersion);
}

TEST(ApiVersionTest, CommentsAndWhiteSpaceDoNotCount) {
  EXPECT_EQ(significant("int  a; // note\n/* block */ int b;"), "inta;intb;");
  EXPECT_EQ(significant("const char* s = \"a // b\";"), "constchar*s=\"a // b\";");
}

}  // namespace
