#include "cli/cli.h"
#include "lua/huge_blocks.h"

int main(int argc, char** argv) {
  luasync::huge::AdviseMallocHeap();  // before the first allocations that matter (lua/huge_blocks.h)
  return luasync::cli::Main(argc, argv);
}
