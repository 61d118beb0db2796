#include "lua/module.h"

namespace luasync {

static const NativeModule* g_modules = nullptr;

const NativeModule* NativeModules() { return g_modules; }

ModuleRegistrar::ModuleRegistrar(const char* name, ModuleOpener open) : node_{name, open, g_modules} {
  g_modules = &node_;
}

}  // namespace luasync
