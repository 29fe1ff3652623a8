#pragma once

// A throwaway PKI for TLS tests, made with the `openssl` command line in a temp dir: a CA, a
// certificate for 127.0.0.1/localhost signed by it (servers and clients both use it, as Mesos
// processes do), and a second, untrusted CA with a certificate of its own.

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

namespace tessera::testing {

class TestPki {
 public:
  /// Makes everything under a fresh temp dir; throws (failing the test) if openssl fails.
  TestPki() {
    dir_ = std::filesystem::temp_directory_path() /
           ("tessera-pki-" + std::to_string(::getpid()) + "-" + std::to_string(counter()++));
    std::filesystem::create_directories(dir_);
    {
      std::ofstream ext(dir_ / "san.ext");
      ext << "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
             "extendedKeyUsage=serverAuth,clientAuth\n";
    }
    makeCa("ca");
    makeCert("node", "ca");
    makeCa("rogue-ca");
    makeCert("rogue", "rogue-ca");
  }
  ~TestPki() {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  TestPki(const TestPki&) = delete;
  TestPki& operator=(const TestPki&) = delete;

  std::string dir() const { return dir_.string(); }
  std::string caFile() const { return path("ca.crt"); }
  std::string certFile() const { return path("node.crt"); }
  std::string keyFile() const { return path("node.key"); }
  /// Signed by a CA nobody trusts.
  std::string rogueCertFile() const { return path("rogue.crt"); }
  std::string rogueKeyFile() const { return path("rogue.key"); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

 private:
  static int& counter() {
    static int value = 0;
    return value;
  }
  void run(const std::string& command) const {
    std::string full = "cd '" + dir_.string() + "' && " + command + " >/dev/null 2>&1";
    if (std::system(full.c_str()) != 0) throw std::runtime_error("openssl failed: " + command);
  }
  void makeCa(const std::string& name) const {
    run("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj '/CN=" + name + "' -keyout " +
        name + ".key -out " + name + ".crt");
  }
  void makeCert(const std::string& name, const std::string& ca) const {
    run("openssl req -newkey rsa:2048 -nodes -subj '/CN=" + name + "' -keyout " + name +
        ".key -out " + name + ".csr");
    run("openssl x509 -req -in " + name + ".csr -CA " + ca + ".crt -CAkey " + ca +
        ".key -CAcreateserial -days 2 -extfile san.ext -out " + name + ".crt");
  }

  std::filesystem::path dir_;
};

}  // namespace tessera::testing
