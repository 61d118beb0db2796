// Command line: options come before the script (or -e CODE, or -); everything
// after the script belongs to the script. `luasync test [paths]` runs test files.
#include "cli/cli.h"

#include <curl/curlver.h>
#include <uv.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

extern "C" {
#include <luajit.h>
}

#include "lua/runtime.h"

namespace luasync::cli {
namespace {

namespace fs = std::filesystem;

// A number of seconds > 0. CLI::PositiveNumber would name its range, printing DBL_MAX in full.
const CLI::Validator kSeconds(
    [](std::string& text) -> std::string {
      char* end = nullptr;
      errno = 0;
      double v = std::strtod(text.c_str(), &end);
      if (text.empty() || *end != '\0' || errno == ERANGE || !(v > 0) || std::isinf(v)) {
        return "expected a number of seconds > 0, got '" + text + "'";
      }
      return std::string();
    },
    "SECONDS");

std::string VersionText() {
  return std::string("luasync ") + LUASYNC_VERSION + " (" + LUAJIT_VERSION + ", libuv " + uv_version_string() +
         ", libcurl " + LIBCURL_VERSION + ")";
}

constexpr const char* kUsage =
    "usage: luasync [options] script.lua [args...]\n"
    "       luasync [options] -e 'code' [args...]\n"
    "       luasync [options] - [args...]        (script read from stdin)\n"
    "       luasync test [test options] [paths...]\n";

bool IsTestFile(const fs::path& p) {
  std::string name = p.filename().string();
  auto ends = [&](const char* suffix) {
    std::string s = suffix;
    return name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
  };
  return ends("_test.lua") || ends("_spec.lua");
}

// Expands folders into their *_test.lua / *_spec.lua files, sorted; keeps files as given.
bool DiscoverTests(const std::vector<std::string>& paths, std::vector<std::string>* out) {
  for (const std::string& p : paths) {
    std::error_code ec;
    auto st = fs::status(p, ec);
    if (ec || !fs::exists(st)) {
      std::fprintf(stderr, "luasync test: no such file or directory: %s\n", p.c_str());
      return false;
    }
    if (fs::is_directory(st)) {
      std::vector<std::string> found;
      for (auto it = fs::recursive_directory_iterator(p, fs::directory_options::skip_permission_denied, ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        std::string fname = it->path().filename().string();
        if (it->is_directory() && !fname.empty() && fname[0] == '.') {
          it.disable_recursion_pending();
          continue;
        }
        if (it->is_regular_file() && IsTestFile(it->path())) found.push_back(it->path().lexically_normal().string());
      }
      std::sort(found.begin(), found.end());
      out->insert(out->end(), found.begin(), found.end());
    } else {
      out->push_back(p);
    }
  }
  return true;
}

int RunTests(int argc, char** argv) {
  CLI::App app{"luasync test: runs *_test.lua and *_spec.lua files", "luasync test"};
  std::vector<std::string> paths;
  std::string reporter = "text", output, filter;
  double test_timeout = 5;
  app.add_option("paths", paths, "files or folders (default .)");
  app.add_option("--reporter", reporter, "text | tap | junit")->check(CLI::IsMember({"text", "tap", "junit"}));
  app.add_option("--output", output, "write the report to FILE");
  app.add_option("--filter", filter, "run only tests whose full name contains TEXT, or matches it as a Lua pattern");
  app.add_option("--test-timeout", test_timeout, "seconds before a test fails as hung")->check(kSeconds);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  if (paths.empty()) paths.push_back(".");
  RunOptions opts;
  opts.source = RunOptions::Source::kTest;
  opts.arg0 = "test";
  if (!DiscoverTests(paths, &opts.test_files)) return 2;
  opts.test_argv = {"reporter", reporter, "output", output, "filter", filter,
                    "test_timeout", std::to_string(test_timeout)};
  Runtime rt;
  return rt.Run(opts);
}

}  // namespace

int Main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "test") return RunTests(argc - 1, argv + 1);

  // Split argv: luasync's own options, then the script (or -e CODE, or -), then its args.
  std::vector<std::string> own;
  RunOptions opts;
  bool have_script = false;
  int i = 1;
  for (; i < argc; i++) {
    std::string a = argv[i];
    if (a == "-e") {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "luasync: -e needs an argument\n%s", kUsage);
        return 2;
      }
      opts.source = RunOptions::Source::kString;
      opts.script = argv[++i];
      opts.arg0 = "-e";
      have_script = true;
      i++;
      break;
    }
    if (a == "-") {
      opts.source = RunOptions::Source::kStdin;
      opts.arg0 = "-";
      have_script = true;
      i++;
      break;
    }
    if (a == "--") {
      if (i + 1 < argc) {
        opts.script = argv[++i];
        opts.arg0 = opts.script;
        have_script = true;
        i++;
      }
      break;
    }
    if (a.size() > 1 && a[0] == '-') {
      own.push_back(a);
      bool takes_value = (a == "--timeout" || a == "--unhandled-rejections");
      if (takes_value && i + 1 < argc) own.push_back(argv[++i]);
      continue;
    }
    opts.script = a;
    opts.arg0 = a;
    have_script = true;
    i++;
    break;
  }
  for (; i < argc; i++) opts.args.push_back(argv[i]);

  CLI::App app{"luasync: Lua scripts on an event loop, with async/await, channels, streams, HTTP and LLM calls",
               "luasync"};
  app.set_version_flag("--version,-v", VersionText());
  std::string rejections = "strict";
  app.add_option("--timeout", opts.timeout, "end the run after SECONDS (exit 124)")->check(kSeconds);
  app.add_option("--unhandled-rejections", rejections, "strict (default) | warn")
      ->check(CLI::IsMember({"strict", "warn"}));
  app.add_flag("--llm-usage", opts.llm_usage, "print LLM token usage per model to stderr at exit");
  app.footer(kUsage);
  std::vector<std::string> rev(own.rbegin(), own.rend());
  try {
    app.parse(rev);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  opts.strict_rejections = rejections == "strict";
  if (!have_script) {
    std::fprintf(stderr, "luasync: no script given\n%s", kUsage);
    return 2;
  }
  Runtime rt;
  return rt.Run(opts);
}

}  // namespace luasync::cli
