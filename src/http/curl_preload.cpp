#include "http/curl_preload.h"

#include <dlfcn.h>
#include <uv.h>

#include <atomic>
#include <exception>

#include "http/multi.h"

namespace luasync::http {
namespace {

std::atomic<bool> g_started{false};
bool g_joined = false;  // loop thread only
uv_thread_t g_thread;

void Preload(void*) {
  // Its own dlopen, so a missing libcurl is not reported (and the process not
  // ended) by a script that may never make a request.
  if (!dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL)) return;
  try {
    InitCurl();
  } catch (const std::exception&) {
    // The first Multi calls InitCurl again and reports the failure.
  }
}

bool IsIdentChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

}  // namespace

void StartCurlPreload() {
  if (g_started.exchange(true)) return;
  if (uv_thread_create(&g_thread, Preload, nullptr) != 0) g_joined = true;  // no thread: nothing to wait for
}

void FinishCurlPreload() {
  if (!g_started.load() || g_joined) return;
  g_joined = true;
  uv_thread_join(&g_thread);
}

bool SourceWantsHttp(std::string_view source) {
  // Whole words only: "http.get" and "luasync.http" count, "https" and "httpd" do not.
  for (std::string_view word : {"http", "fetch", "llm", "llmBridge"}) {
    for (size_t at = source.find(word); at != std::string_view::npos; at = source.find(word, at + 1)) {
      size_t end = at + word.size();
      bool starts = at == 0 || !IsIdentChar(source[at - 1]);
      bool ends = end == source.size() || !IsIdentChar(source[end]);
      if (starts && ends) return true;
    }
  }
  return false;
}

}  // namespace luasync::http
