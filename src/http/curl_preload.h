// Loading libcurl ahead of the first request, on a thread of its own.
//
// luasync opens libcurl on first use (curl_lazy.cpp). Mapping and relocating it
// and its ~30 dependencies, then curl_global_init, takes 10-20 ms, all on the
// loop thread, all inside a script's first request. When a script is known to
// want HTTP early, StartCurlPreload does that work on a background thread while
// the runtime boots and the script starts; the first request then finds curl
// ready, or waits only for the rest (dlopen and curl_global_init are guarded,
// see InitCurl in multi.h). The thread touches no Lua state and no libuv loop.
#pragma once

#include <string_view>

namespace luasync::http {

/// Starts the background load once per process; later calls do nothing. A
/// failure there is silent: the first request repeats the load and reports it.
void StartCurlPreload();

/// Waits for the background load, if one was started. Call before the process
/// exits (exit() must not run atexit handlers while another thread is inside
/// dlopen or curl_global_init).
void FinishCurlPreload();

/// Whether a script's source names luasync's network API (http, fetch, llm):
/// the hint for StartCurlPreload. A false positive costs a background load.
bool SourceWantsHttp(std::string_view source);

}  // namespace luasync::http
