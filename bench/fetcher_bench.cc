// The agent's fetcher on a 50 MiB .tar.gz served over HTTP on 127.0.0.1, in one run, several
// ways per round (interleaved, so they share the machine's noise):
//   bare      `curl -sf -o <file> <url> && tar -xzf <file> -C <dir>` (two processes);
//   uncached  Fetcher with cache=false: download into the sandbox, then extract;
//   cached    Fetcher with cache=true on a primed cache: link the cached archive, then extract;
//   linked    a hit with extract=false: the cached file hard-linked into the sandbox;
//   copied    a hit with extract=false and executable=true, which always copies (as every hit
//             did before hits were linked, and as a root task's hit still does);
//   extraction alone: extractArchive() of the cached file into a fresh directory;
//   tree link: hard-linking an already extracted tree into a fresh directory (what a cache
//             of extracted trees would cost per hit; the fetcher has no such cache).
// Tasks are run as "nobody" when the bench runs as root (a root task's hit is copied).
// Every run gets a fresh sandbox; the time is until the files are on disk.
// Usage: fetcher_bench [rounds] [MiB]
#include <archive.h>
#include <archive_entry.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "kernel/agent/fetcher.h"
#include "kernel/agent/fetcher_archive.h"
#include "tests/agent/test_http_server.h"

namespace {

using namespace tessera::kernel;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

// A .tar.gz of `mib` MiB: files of pseudo-random bytes (barely compressible, so the archive
// is about as large as its contents).
std::string makeArchive(size_t mib) {
  std::string out((mib + 8) << 20, '\0');
  size_t used = 0;
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_add_filter_gzip(a);
  archive_write_set_options(a, "gzip:compression-level=1");
  archive_write_open_memory(a, out.data(), out.size(), &used);
  std::mt19937_64 random(42);
  std::string chunk(1 << 20, '\0');
  for (size_t file = 0; file < mib / 10 + (mib % 10 ? 1 : 0); ++file) {
    const size_t size = std::min<size_t>(10, mib - file * 10) << 20;
    archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, ("data/part" + std::to_string(file)).c_str());
    archive_entry_set_filetype(entry, AE_IFREG);
    archive_entry_set_perm(entry, 0644);
    archive_entry_set_size(entry, static_cast<la_int64_t>(size));
    archive_write_header(a, entry);
    for (size_t done = 0; done < size; done += chunk.size()) {
      for (size_t i = 0; i < chunk.size(); i += 8) {
        uint64_t word = random();
        std::memcpy(chunk.data() + i, &word, 8);
      }
      archive_write_data(a, chunk.data(), chunk.size());
    }
    archive_entry_free(entry);
  }
  archive_write_close(a);
  archive_write_free(a);
  out.resize(used);
  return out;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

double msSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// The user tasks run as: a root agent runs a task as its user, and links hits only for a
// task that is not root.
std::optional<std::string> taskUser() {
  if (::geteuid() == 0) return "nobody";
  return std::nullopt;
}

double fetchOnce(agent::Fetcher& fetcher, const std::string& url, bool cache, bool extract,
                 const fs::path& sandbox, bool executable = false) {
  fs::create_directories(sandbox);
  tessera::v1::CommandInfo::URI uri;
  uri.set_value(url);
  uri.set_cache(cache);
  uri.set_extract(extract);
  uri.set_executable(executable);
  std::promise<tessera::api::Status> done;
  const auto start = Clock::now();
  fetcher.fetch(
      {uri}, sandbox, [&done](tessera::api::Status s) { done.set_value(s); }, taskUser());
  auto status = done.get_future().get();
  const double ms = msSince(start);
  if (!status) {
    std::fprintf(stderr, "fetch failed: %s\n", status.toString().c_str());
    std::exit(1);
  }
  return ms;
}

// Hard-links every regular file of `from` into `to`, making its directories.
void linkTree(const fs::path& from, const fs::path& to) {
  fs::create_directories(to);
  for (const auto& entry : fs::recursive_directory_iterator(from)) {
    const fs::path target = to / entry.path().lexically_relative(from);
    if (entry.is_directory()) {
      fs::create_directory(target);
    } else {
      fs::create_hard_link(entry.path(), target);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 5;
  const size_t mib = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 50;
  const fs::path root = fs::temp_directory_path() / ("fetcher_bench_" + std::to_string(getpid()));
  fs::create_directories(root);

  const std::string archive = makeArchive(mib);
  agent::testing::TestHttpServer server;
  server.serve("/big.tar.gz", archive);
  const std::string url = server.url("/big.tar.gz");

  agent::FetcherOptions options;
  options.cacheDir = root / "cache";
  auto created = agent::Fetcher::create(options);
  if (!created) {
    std::fprintf(stderr, "%s\n", created.status().toString().c_str());
    return 1;
  }
  auto& fetcher = **created;
  fetchOnce(fetcher, url, true, true, root / "prime");  // primes the cache

  fs::path cachedFile;
  for (const auto& entry : fs::directory_iterator(options.cacheDir)) cachedFile = entry.path();
  // The extracted tree that "tree link" shares, as a cache of extracted trees would keep it.
  const fs::path tree = root / "tree";
  fs::create_directories(tree);
  if (!agent::extractArchive(cachedFile, tree, agent::ArchiveKind::kArchive)) return 1;

  std::vector<double> bare, uncached, cached, linked, copied, extraction, treeLink;
  int run = 0;
  for (int round = 0; round < rounds; ++round) {
    const fs::path dir = root / ("bare" + std::to_string(run++));
    fs::create_directories(dir);
    const std::string command = "curl -sf -o " + (dir / "big.tar.gz").string() + " " + url +
                                " && tar -xzf " + (dir / "big.tar.gz").string() + " -C " +
                                dir.string();
    auto start = Clock::now();
    if (std::system(command.c_str()) != 0) {
      std::fprintf(stderr, "'%s' failed\n", command.c_str());
      return 1;
    }
    bare.push_back(msSince(start));
    uncached.push_back(fetchOnce(fetcher, url, false, true, root / ("u" + std::to_string(run++))));
    cached.push_back(fetchOnce(fetcher, url, true, true, root / ("c" + std::to_string(run++))));
    linked.push_back(fetchOnce(fetcher, url, true, false, root / ("h" + std::to_string(run++))));
    copied.push_back(
        fetchOnce(fetcher, url, true, false, root / ("p" + std::to_string(run++)), true));
    const fs::path unpacked = root / ("x" + std::to_string(run++));
    fs::create_directories(unpacked);
    start = Clock::now();
    if (!agent::extractArchive(cachedFile, unpacked, agent::ArchiveKind::kArchive)) return 1;
    extraction.push_back(msSince(start));
    start = Clock::now();
    linkTree(tree, root / ("t" + std::to_string(run++)));
    treeLink.push_back(msSince(start));
    for (const auto& entry : fs::directory_iterator(root)) {
      if (entry.path().filename() != "cache" && entry.path().filename() != "tree") {
        fs::remove_all(entry.path());
      }
    }
  }
  const double size = static_cast<double>(archive.size()) / (1 << 20);
  std::printf("archive: %.1f MiB .tar.gz (%zu MiB of contents), %d rounds, medians\n", size, mib,
              rounds);
  std::printf("%-28s %10s %10s\n", "", "ms", "MiB/s");
  auto line = [&](const char* name, const std::vector<double>& ms) {
    std::printf("%-28s %10.1f %10.1f\n", name, median(ms), size / (median(ms) / 1000));
  };
  line("bare curl + tar", bare);
  line("fetcher, uncached", uncached);
  line("fetcher, hit (link + extract)", cached);
  line("fetcher, hit, no extract (link)", linked);
  line("fetcher, hit, no extract (copy)", copied);
  line("extraction alone", extraction);
  line("tree link (not in fetcher)", treeLink);
  std::printf("tasks run as: %s\n", taskUser() ? taskUser()->c_str() : "the bench's user");
  std::printf("server requests: %d (1 to prime the cache + %d uncached + %d bare)\n",
              server.requests("/big.tar.gz"), rounds, rounds);
  fetcher.stop();
  fs::remove_all(root);
  return 0;
}
