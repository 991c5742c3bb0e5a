# Cross-building for 64-bit ARM Linux with Debian's cross toolchain
# (crossbuild-essential-arm64) and the arm64 -dev packages installed
# multiarch (dpkg --add-architecture arm64). Shaders compile on the build
# machine: glslangValidator and spirv-val are host programs.
# scripts/cross-arm64.sh installs all of it, builds and runs the result
# under qemu-aarch64.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
find_program(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64)
# The arm64 packages' .pc files, never the build machine's.
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")
