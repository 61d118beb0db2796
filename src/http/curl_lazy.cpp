// libcurl, loaded on first use.
//
// luasync is not linked against libcurl: linking it makes the dynamic loader map
// and relocate libcurl and its ~30 dependencies (TLS, Kerberos, LDAP, ...) at every
// start, which costs several milliseconds and megabytes before a script that never
// makes a request runs a single line. Instead, the curl functions luasync calls are
// defined here and forward to libcurl.so.4, opened with dlopen the first time any of
// them is called.
//
// curl_easy_setopt, curl_multi_setopt and curl_easy_getinfo are variadic with exactly
// one argument after the option. Every type curl takes there (long, curl_off_t,
// pointers, function pointers) is passed in one general-purpose register on the
// ABIs luasync builds for (x86-64 System V, AArch64), so it is forwarded as a
// pointer-sized integer.
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>
#include <dlfcn.h>

#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

static_assert(sizeof(void*) == 8 && sizeof(long) == 8 && sizeof(curl_off_t) == 8,
              "curl_lazy.cpp forwards variadic curl arguments as 64-bit integers");

namespace {

void* Library() {
  static void* handle = [] {
    void* h = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      // No way to make HTTP requests at all: say why and stop, rather than crash later.
      std::fprintf(stderr, "luasync: cannot load libcurl (libcurl.so.4): %s\n", dlerror());
      std::fflush(stderr);
      std::_Exit(1);
    }
    return h;
  }();
  return handle;
}

template <typename Fn>
Fn Resolve(const char* name) {
  void* p = dlsym(Library(), name);
  if (!p) {
    std::fprintf(stderr, "luasync: libcurl has no %s\n", name);
    std::fflush(stderr);
    std::_Exit(1);
  }
  return reinterpret_cast<Fn>(p);
}

intptr_t OneVarArg(va_list ap) { return va_arg(ap, intptr_t); }

}  // namespace

#define LUASYNC_CURL_FN(ret, name, params, args)                   \
  extern "C" ret name params {                                     \
    static auto fn = Resolve<ret(*) params>(#name);                \
    return fn args;                                                \
  }

LUASYNC_CURL_FN(CURLcode, curl_global_init, (long flags), (flags))
LUASYNC_CURL_FN(CURL*, curl_easy_init, (void), ())
LUASYNC_CURL_FN(void, curl_easy_cleanup, (CURL * h), (h))
LUASYNC_CURL_FN(void, curl_easy_reset, (CURL * h), (h))
LUASYNC_CURL_FN(CURLcode, curl_easy_pause, (CURL * h, int mask), (h, mask))
LUASYNC_CURL_FN(const char*, curl_easy_strerror, (CURLcode c), (c))
LUASYNC_CURL_FN(CURLM*, curl_multi_init, (void), ())
LUASYNC_CURL_FN(CURLMcode, curl_multi_cleanup, (CURLM * m), (m))
LUASYNC_CURL_FN(CURLMcode, curl_multi_add_handle, (CURLM * m, CURL* h), (m, h))
LUASYNC_CURL_FN(CURLMcode, curl_multi_remove_handle, (CURLM * m, CURL* h), (m, h))
LUASYNC_CURL_FN(CURLMcode, curl_multi_assign, (CURLM * m, curl_socket_t s, void* p), (m, s, p))
LUASYNC_CURL_FN(CURLMcode, curl_multi_socket_action, (CURLM * m, curl_socket_t s, int ev, int* running),
                (m, s, ev, running))
LUASYNC_CURL_FN(CURLMsg*, curl_multi_info_read, (CURLM * m, int* left), (m, left))
LUASYNC_CURL_FN(const char*, curl_multi_strerror, (CURLMcode c), (c))
LUASYNC_CURL_FN(curl_slist*, curl_slist_append, (curl_slist * l, const char* s), (l, s))
LUASYNC_CURL_FN(void, curl_slist_free_all, (curl_slist * l), (l))
LUASYNC_CURL_FN(void, curl_free, (void* p), (p))
LUASYNC_CURL_FN(CURLU*, curl_url, (void), ())
LUASYNC_CURL_FN(void, curl_url_cleanup, (CURLU * u), (u))
LUASYNC_CURL_FN(CURLUcode, curl_url_set, (CURLU * u, CURLUPart w, const char* s, unsigned int f), (u, w, s, f))
LUASYNC_CURL_FN(CURLUcode, curl_url_get, (CURLU* u, CURLUPart w, char** s, unsigned int f), (u, w, s, f))
LUASYNC_CURL_FN(curl_version_info_data*, curl_version_info, (CURLversion v), (v))

extern "C" CURLcode curl_easy_setopt(CURL* h, CURLoption option, ...) {
  static auto fn = Resolve<CURLcode (*)(CURL*, CURLoption, ...)>("curl_easy_setopt");
  va_list ap;
  va_start(ap, option);
  intptr_t arg = OneVarArg(ap);
  va_end(ap);
  return fn(h, option, arg);
}

extern "C" CURLMcode curl_multi_setopt(CURLM* m, CURLMoption option, ...) {
  static auto fn = Resolve<CURLMcode (*)(CURLM*, CURLMoption, ...)>("curl_multi_setopt");
  va_list ap;
  va_start(ap, option);
  intptr_t arg = OneVarArg(ap);
  va_end(ap);
  return fn(m, option, arg);
}

extern "C" CURLcode curl_easy_getinfo(CURL* h, CURLINFO info, ...) {
  static auto fn = Resolve<CURLcode (*)(CURL*, CURLINFO, ...)>("curl_easy_getinfo");
  va_list ap;
  va_start(ap, info);
  intptr_t arg = OneVarArg(ap);
  va_end(ap);
  return fn(h, info, arg);
}
