#include "cli/cli.h"

int main(int argc, char** argv) { return luasync::cli::Main(argc, argv); }
