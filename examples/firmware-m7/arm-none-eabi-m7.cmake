# CMake toolchain file: bare-metal Arm Cortex-M7 with its double-precision FPU, built
# with Debian's gcc-arm-none-eabi and newlib. The flags match targets/cortex-m7.xml
# (triple thumbv7em-none-eabihf, features +dsp,+fp-armv8d16: FPv5 with 16 double
# registers) and QEMU's mps2-an500 board, whose Cortex-M7 has that FPU.
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_ASM_COMPILER arm-none-eabi-gcc)
# No OS to link a test program against: try_compile builds a static library instead.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
set(CMAKE_C_FLAGS_INIT "-mcpu=cortex-m7 -mthumb -mfloat-abi=hard -mfpu=fpv5-d16")
set(CMAKE_ASM_FLAGS_INIT "${CMAKE_C_FLAGS_INIT}")
# The sysroot is the compiler's own; programs (moss, python) come from the host.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
