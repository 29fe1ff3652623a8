// The agent's fetcher on a 50 MiB .tar.gz of a few hundred files served over HTTP on
// 127.0.0.1, in one run, several ways per round (interleaved, so they share the machine's
// noise):
//   bare      `curl -sf -o <file> <url> && tar -xzf <file> -C <dir>` (two processes);
//   uncached  Fetcher with cache=false: download into the sandbox, then extract;
//   miss      cache=true, a URI not cached yet: download into the cache, extract once into the
//             cache, link the archive and the tree into the sandbox;
//   tree hit  cache=true on a primed cache, extract: link the archive and the cached tree
//             (directories made, every file hard-linked; what a non-root task gets);
//   extract hit  the same hit on a fetcher with linkCached=false (--fetcher_link_cached=false,
//             Mesos's way): copy the cached archive, then extract it into the sandbox;
//   linked    a hit with extract=false: the cached file hard-linked into the sandbox;
//   copied    a hit with extract=false and executable=true, which always copies;
//   extraction alone: extractArchive() of the cached file into a fresh directory;
//   bare tree link: this bench's own hard-linking of an extracted tree (no checks, no chown).
// Tasks are run as "nobody" when the bench runs as root (a root task's hit is copied and
// extracted). Every run gets a fresh sandbox; the time is until the files are on disk.
// Usage: fetcher_bench [rounds] [MiB] [files]
#include <archive.h>
#include <archive_entry.h>
#include <sys/resource.h>
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

// A .tar.gz of `mib` MiB in `files` files of about equal size, spread over 16 directories:
// pseudo-random bytes (barely compressible, so the archive is about as large as its contents).
std::string makeArchive(size_t mib, size_t files) {
  std::string out((mib + 8) << 20, '\0');
  size_t used = 0;
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_add_filter_gzip(a);
  archive_write_set_options(a, "gzip:compression-level=1");
  archive_write_open_memory(a, out.data(), out.size(), &used);
  std::mt19937_64 random(42);
  const size_t total = mib << 20;
  std::string chunk;
  for (size_t dir = 0; dir < 16; ++dir) {
    archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, ("data/d" + std::to_string(dir)).c_str());
    archive_entry_set_filetype(entry, AE_IFDIR);
    archive_entry_set_perm(entry, 0755);
    archive_write_header(a, entry);
    archive_entry_free(entry);
  }
  for (size_t file = 0; file < files; ++file) {
    const size_t size = total / files + (file < total % files ? 1 : 0);
    archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(
        entry, ("data/d" + std::to_string(file % 16) + "/part" + std::to_string(file)).c_str());
    archive_entry_set_filetype(entry, AE_IFREG);
    archive_entry_set_perm(entry, 0644);
    archive_entry_set_size(entry, static_cast<la_int64_t>(size));
    archive_write_header(a, entry);
    chunk.resize((size + 7) & ~size_t{7});
    for (size_t i = 0; i < chunk.size(); i += 8) {
      uint64_t word = random();
      std::memcpy(chunk.data() + i, &word, 8);
    }
    archive_write_data(a, chunk.data(), size);
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

// CPU time (user + system) of this process's threads and its waited-for children, in ms: on
// a loaded machine wall time is mostly waiting for a core; this is what the work itself took.
double cpuMs() {
  double ms = 0;
  for (int who : {RUSAGE_SELF, RUSAGE_CHILDREN}) {
    rusage usage{};
    ::getrusage(who, &usage);
    for (const timeval& t : {usage.ru_utime, usage.ru_stime}) {
      ms += static_cast<double>(t.tv_sec) * 1000 + static_cast<double>(t.tv_usec) / 1000;
    }
  }
  return ms;
}

// One way's wall and CPU times, ms.
struct Row {
  std::vector<double> wall, cpu;
};

// Runs `work` (which returns its wall time) and records it and its CPU time in `row`.
template <typename Work>
void measure(Row& row, Work&& work) {
  const double before = cpuMs();
  row.wall.push_back(work());
  row.cpu.push_back(cpuMs() - before);
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
    } else if (entry.is_regular_file()) {
      fs::create_hard_link(entry.path(), target);
    }
  }
}

// The time fetcher.log gives for checking and linking the cached tree, in ms.
double linkedTreeMs(const fs::path& sandbox) {
  std::ifstream in(sandbox / "fetcher.log");
  std::string line;
  double ms = 0;
  while (std::getline(in, line)) {
    const auto at = line.find("linked the extracted tree");
    const auto took = line.rfind(" in ");
    if (at != std::string::npos && took != std::string::npos) {
      ms = std::strtod(line.c_str() + took + 4, nullptr) / 1000;
    }
  }
  return ms;
}

agent::FetcherOptions fetcherOptions(const fs::path& cacheDir, bool linkCached) {
  agent::FetcherOptions options;
  options.cacheDir = cacheDir;
  options.linkCached = linkCached;
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 5;
  const size_t mib = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 50;
  const size_t files = argc > 3 ? std::max<size_t>(1, std::strtoul(argv[3], nullptr, 10)) : 300;
  const fs::path root = fs::temp_directory_path() / ("fetcher_bench_" + std::to_string(getpid()));
  fs::create_directories(root);

  const std::string archive = makeArchive(mib, files);
  agent::testing::TestHttpServer server;
  server.serve("/big.tar.gz", archive);
  for (int round = 0; round < rounds; ++round) {
    server.serve("/miss" + std::to_string(round) + ".tar.gz", archive);
  }
  const std::string url = server.url("/big.tar.gz");

  auto created = agent::Fetcher::create(fetcherOptions(root / "cache", true));
  auto createdCopying = agent::Fetcher::create(fetcherOptions(root / "cache-copying", false));
  if (!created || !createdCopying) {
    std::fprintf(stderr, "cannot create the fetchers\n");
    return 1;
  }
  auto& fetcher = **created;
  auto& copying = **createdCopying;
  fetchOnce(fetcher, url, true, true, root / "prime");  // primes the cache and its tree
  fetchOnce(copying, url, true, true, root / "prime-copying");

  fs::path cachedFile;
  fs::path cachedTree;
  for (const auto& entry : fs::directory_iterator(root / "cache")) {
    if (entry.is_directory()) {
      cachedTree = entry.path();
    } else {
      cachedFile = entry.path();
    }
  }
  if (cachedTree.empty()) {
    std::fprintf(stderr, "the fetcher kept no extracted tree\n");
    return 1;
  }

  std::vector<double> treeLinkPart;  // of a tree hit: the tree's check and link (fetcher.log)
  std::vector<double> missTreePart;  // of a miss: extraction into the cache, seal, link
  Row bare, uncached, miss, treeHit, extractHit, linked, copied, extraction, bareTreeLink;
  int run = 0;
  auto fresh = [&](const char* prefix) { return root / (prefix + std::to_string(run++)); };
  for (int round = 0; round < rounds; ++round) {
    const fs::path dir = fresh("bare");
    fs::create_directories(dir);
    const std::string command = "curl -sf -o " + (dir / "big.tar.gz").string() + " " + url +
                                " && tar -xzf " + (dir / "big.tar.gz").string() + " -C " +
                                dir.string();
    bool failed = false;
    measure(bare, [&] {
      const auto start = Clock::now();
      failed = std::system(command.c_str()) != 0;
      return msSince(start);
    });
    if (failed) {
      std::fprintf(stderr, "'%s' failed\n", command.c_str());
      return 1;
    }
    measure(uncached, [&] { return fetchOnce(fetcher, url, false, true, fresh("u")); });
    const std::string missUrl = server.url("/miss" + std::to_string(round) + ".tar.gz");
    const fs::path missDir = fresh("m");
    measure(miss, [&] { return fetchOnce(fetcher, missUrl, true, true, missDir); });
    missTreePart.push_back(linkedTreeMs(missDir));
    const fs::path hitDir = fresh("c");
    measure(treeHit, [&] { return fetchOnce(fetcher, url, true, true, hitDir); });
    treeLinkPart.push_back(linkedTreeMs(hitDir));
    measure(extractHit, [&] { return fetchOnce(copying, url, true, true, fresh("e")); });
    measure(linked, [&] { return fetchOnce(fetcher, url, true, false, fresh("h")); });
    measure(copied, [&] { return fetchOnce(fetcher, url, true, false, fresh("p"), true); });
    const fs::path unpacked = fresh("x");
    fs::create_directories(unpacked);
    measure(extraction, [&] {
      const auto start = Clock::now();
      failed = !agent::extractArchive(cachedFile, unpacked, agent::ArchiveKind::kArchive);
      return msSince(start);
    });
    if (failed) return 1;
    const fs::path linkedTo = fresh("t");
    measure(bareTreeLink, [&] {
      const auto start = Clock::now();
      linkTree(cachedTree, linkedTo);
      return msSince(start);
    });
    for (const auto& entry : fs::directory_iterator(root)) {
      const auto name = entry.path().filename().string();
      if (name.rfind("cache", 0) != 0) fs::remove_all(entry.path());
    }
  }
  const double size = static_cast<double>(archive.size()) / (1 << 20);
  std::printf("archive: %.1f MiB .tar.gz, %zu MiB in %zu files, %d rounds, medians\n", size, mib,
              files, rounds);
  std::printf("%-44s %10s %10s %10s\n", "", "wall ms", "MiB/s", "CPU ms");
  auto line = [&](const char* name, const Row& row) {
    std::printf("%-44s %10.2f %10.1f %10.2f\n", name, median(row.wall),
                size / (median(row.wall) / 1000), median(row.cpu));
  };
  line("bare curl + tar", bare);
  line("fetcher, uncached", uncached);
  line("fetcher, miss with extract (extract once)", miss);
  std::printf("%-44s %10.2f\n", "  of which: extracted, sealed, linked", median(missTreePart));
  line("fetcher, hit with extract (tree linked)", treeHit);
  std::printf("%-44s %10.2f\n", "  of which: tree checked and linked", median(treeLinkPart));
  line("fetcher, hit with extract (copy + extract)", extractHit);
  line("fetcher, hit, no extract (link)", linked);
  line("fetcher, hit, no extract (copy)", copied);
  line("extraction alone", extraction);
  line("bare tree link (bench's own)", bareTreeLink);
  const double n = static_cast<double>(files);
  std::printf(
      "per file (wall/CPU us): tree hit over a plain link hit %.1f/%.1f, bare tree link "
      "%.1f/%.1f, extraction %.1f/%.1f\n",
      (median(treeHit.wall) - median(linked.wall)) * 1000 / n,
      (median(treeHit.cpu) - median(linked.cpu)) * 1000 / n, median(bareTreeLink.wall) * 1000 / n,
      median(bareTreeLink.cpu) * 1000 / n, median(extraction.wall) * 1000 / n,
      median(extraction.cpu) * 1000 / n);
  std::printf("tree builds: %llu (1 to prime + %d misses)\n",
              static_cast<unsigned long long>(fetcher.cache().treeBuilds()), rounds);
  std::printf("tasks run as: %s\n", taskUser() ? taskUser()->c_str() : "the bench's user");
  std::printf("server requests: %d (2 to prime the caches + %d uncached + %d bare)\n",
              server.requests("/big.tar.gz"), rounds, rounds);
  fetcher.stop();
  copying.stop();
  fs::remove_all(root);
  return 0;
}
