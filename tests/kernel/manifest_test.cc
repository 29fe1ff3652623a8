#include "kernel/modules/manifest.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>

namespace tessera::kernel::modules {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "tessera-manifest-XXXXXX").string();
    path_ = mkdtemp(pattern.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }
  void write(const std::string& name, const std::string& text) const {
    std::ofstream(path_ / name) << text;
  }

 private:
  fs::path path_;
};

TEST(ManifestTest, ParsesTheMesosShape) {
  TempDir dir;
  dir.write("libfoo.so", "");
  auto entries = parseManifest(R"({"libraries": [
      {"file": "/opt/lib/libx.so", "modules": [{"name": "org_x", "parameters": [
          {"key": "a", "value": "1"}, {"key": "b", "value": "2"}]}]},
      {"file": "relative/liby.so", "modules": [{"name": "org_y"}]},
      {"name": "foo", "modules": [{"name": "org_foo"}]},
      {"name": "bar", "modules": [{"name": "org_bar"}]}]})",
                               "m.json", "/etc/tessera", {dir.path()});
  ASSERT_TRUE(entries) << entries.status().toString();
  ASSERT_EQ(entries->size(), 4u);
  EXPECT_EQ((*entries)[0].library, "/opt/lib/libx.so");
  EXPECT_EQ((*entries)[0].module, "org_x");
  EXPECT_EQ((*entries)[0].parameters.get("b"), "2");
  EXPECT_EQ((*entries)[1].library, "/etc/tessera/relative/liby.so");
  EXPECT_EQ((*entries)[2].library, (dir.path() / "libfoo.so").string());
  EXPECT_EQ((*entries)[3].library, "libbar.so");  // not in the search path: the loader's search
  EXPECT_EQ((*entries)[3].origin, "m.json");
}

TEST(ManifestTest, AliasesAreData) {
  auto entries = parseManifest(
      R"({"libraries": [{"file": "/l/liba.so", "modules": [
          {"name": "org_a", "aliases": ["basic", "b"]}, {"name": "org_c"}]}]})",
      "m.json", "/", {});
  ASSERT_TRUE(entries) << entries.status().toString();
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ((*entries)[0].aliases, (std::vector<std::string>{"basic", "b"}));
  EXPECT_TRUE((*entries)[1].aliases.empty());
  auto empty = parseManifest(
      R"({"libraries": [{"file": "/l/liba.so", "modules": [{"name": "org_a", "aliases": [""]}]}]})",
      "m.json", "/", {});
  ASSERT_FALSE(empty);
  EXPECT_THAT(empty.status().message(), HasSubstr("module 'org_a' has an empty alias"));
}

TEST(ManifestTest, RejectsMalformedManifestsNamingTheOrigin) {
  struct Case {
    const char* json;
    const char* expected;
  };
  for (const Case& c : {
           Case{"{", "modules manifest 'm.json' is malformed"},
           Case{R"({"libraries": [{"fiel": "x"}]})", "modules manifest 'm.json' is malformed"},
           Case{R"({"libraries": [{"modules": [{"name": "a"}]}]})",
                "libraries[0] needs exactly one of 'file' and 'name'"},
           Case{R"({"libraries": [{"file": "a", "name": "b", "modules": [{"name": "a"}]}]})",
                "libraries[0] needs exactly one of 'file' and 'name'"},
           Case{R"({"libraries": [{"file": "/a.so"}]})", "library '/a.so' lists no modules"},
           Case{R"({"libraries": [{"file": "/a.so", "modules": [{}]}]})",
                "libraries[0].modules[0] has no 'name'"},
           Case{R"({"libraries": [{"name": "../x", "modules": [{"name": "a"}]}]})",
                "has a bad 'name' '../x'"},
       }) {
    auto entries = parseManifest(c.json, "m.json", "/", {});
    ASSERT_FALSE(entries) << c.json;
    EXPECT_THAT(entries.status().message(), HasSubstr(c.expected)) << c.json;
    EXPECT_THAT(entries.status().message(), HasSubstr("'m.json'")) << c.json;
  }
}

TEST(ManifestTest, ModulesFlagTakesPathFileUrlOrInlineJson) {
  TempDir dir;
  const std::string json = R"({"libraries": [{"file": "libz.so", "modules": [{"name": "z"}]}]})";
  dir.write("m.json", json);
  for (const std::string& value :
       {(dir.path() / "m.json").string(), "file://" + (dir.path() / "m.json").string()}) {
    auto entries = readManifests({value, std::nullopt, ""}, {});
    ASSERT_TRUE(entries) << entries.status().toString();
    ASSERT_EQ(entries->size(), 1u);
    EXPECT_EQ((*entries)[0].library, (dir.path() / "libz.so").string());
  }
  auto inlined = readManifests({json, std::nullopt, ""}, {});
  ASSERT_TRUE(inlined);
  EXPECT_EQ((*inlined)[0].origin, "--modules");
  EXPECT_EQ((*inlined)[0].library, (fs::current_path() / "libz.so").string());

  auto missing = readManifests({"/nonexistent/m.json", std::nullopt, ""}, {});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.status().message(), "cannot read modules manifest '/nonexistent/m.json'");
}

TEST(ManifestTest, ModulesDirReadsEveryJsonAlphabetically) {
  TempDir dir;
  dir.write("b.json", R"({"libraries": [{"file": "/b.so", "modules": [{"name": "b"}]}]})");
  dir.write("a.json", R"({"libraries": [{"file": "/a.so", "modules": [{"name": "a"}]}]})");
  dir.write("notes.txt", "not a manifest");
  auto entries = readManifests({std::nullopt, dir.path().string(), ""}, {});
  ASSERT_TRUE(entries) << entries.status().toString();
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ((*entries)[0].module, "a");
  EXPECT_EQ((*entries)[1].module, "b");
}

TEST(ManifestTest, ModulesAndModulesDirAreMutuallyExclusive) {
  auto entries = readManifests({"{}", "/tmp", ""}, {});
  ASSERT_FALSE(entries);
  EXPECT_EQ(entries.status().message(),
            "flags '--modules' and '--modules_dir' are mutually exclusive");
}

TEST(ManifestTest, DefaultManifestIsUsedWithoutFlags) {
  TempDir dir;
  dir.write("modules.json", R"({"libraries": [{"file": "/d.so", "modules": [{"name": "d"}]}]})");
  auto entries = readManifests({std::nullopt, std::nullopt, dir.path() / "modules.json"}, {});
  ASSERT_TRUE(entries);
  ASSERT_EQ(entries->size(), 1u);
  EXPECT_EQ((*entries)[0].module, "d");
  auto none = readManifests({std::nullopt, std::nullopt, dir.path() / "absent.json"}, {});
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
}

// Every byte of `text` is printable ASCII: an error message safe for a terminal and for JSON.
bool printableAscii(const std::string& text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

TEST(ManifestTest, ABinaryIsNotValidJsonAndItsBytesAreNotEchoed) {
  TempDir dir;
  std::string elf(
      "\x7f"
      "ELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00",
      16);
  for (int i = 0; i < 4096; ++i) elf += static_cast<char>((i * 131) % 256);
  dir.write("libx.so", elf);
  // A small binary, a large one (past the size limit) and one that starts like JSON.
  std::string large = elf;
  while (large.size() <= 2 * 1024 * 1024) large += elf;
  dir.write("large.so", large);
  dir.write("brace.bin", "{\"libraries\": [\xff\xfe\x00\x01]}");
  for (const char* name : {"libx.so", "large.so", "brace.bin"}) {
    SCOPED_TRACE(name);
    std::string path = (dir.path() / name).string();
    auto entries = readManifests({path, std::nullopt, ""}, {});
    ASSERT_FALSE(entries);
    std::string message = entries.status().message();
    EXPECT_THAT(message, HasSubstr("'" + path + "'"));
    EXPECT_THAT(message, HasSubstr("is not valid JSON"));
    EXPECT_TRUE(printableAscii(message)) << message;
    EXPECT_LT(message.size(), path.size() + 200) << message;
  }
  // Valid UTF-8 text that is malformed JSON: protobuf's quote of it is escaped too.
  auto text = parseManifest("{\"libraries\": [\x01\"\xc3\xa9\" ", "m.json", "/", {});
  ASSERT_FALSE(text);
  EXPECT_THAT(text.status().message(), HasSubstr("'m.json'"));
  EXPECT_TRUE(printableAscii(text.status().message())) << text.status().message();
}

}  // namespace
}  // namespace tessera::kernel::modules
