#pragma once

namespace luasync::cli {

/// Parses the command line, runs the script or the test runner, returns the exit code.
int Main(int argc, char** argv);

}  // namespace luasync::cli
