// Registration of native Lua modules.
//
// Each mod_*.cpp registers its opener once at static-initialisation time:
//
//   static int luaopen_json(lua_State* L) { ... push the module table ...; return 1; }
//   LUASYNC_MODULE("luasync.json", luaopen_json);
//
// The runtime puts every registered opener into package.preload, so
// require("luasync.json") finds it. luasync_core is an OBJECT library, so no
// registrar is dropped by the linker.
#pragma once

extern "C" {
#include <lua.h>
}

namespace luasync {

using ModuleOpener = int (*)(lua_State*);

struct NativeModule {
  const char* name;
  ModuleOpener open;
  const NativeModule* next;
};

/// Head of the intrusive list of registered native modules.
const NativeModule* NativeModules();

class ModuleRegistrar {
 public:
  ModuleRegistrar(const char* name, ModuleOpener open);
 private:
  NativeModule node_;
};

}  // namespace luasync

#define LUASYNC_CAT2(a, b) a##b
#define LUASYNC_CAT(a, b) LUASYNC_CAT2(a, b)
#define LUASYNC_MODULE(name, fn) \
  static ::luasync::ModuleRegistrar LUASYNC_CAT(luasync_module_, __LINE__)(name, fn)
