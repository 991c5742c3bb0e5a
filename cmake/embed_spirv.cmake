# cmake -DIN=x.spv -DOUT=x.c -DNAME=x -P embed_spirv.cmake
# Writes the SPIR-V binary as a 4-byte-aligned byte array named vkf_spv_<NAME>.
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" len)
math(EXPR bytes "${len} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
string(REGEX REPLACE "((0x..,){24})" "\\1\n    " body "${body}")
file(WRITE "${OUT}.tmp"
"/* Generated from ${NAME}.spv by cmake/embed_spirv.cmake; do not edit. */\n"
"#include <stddef.h>\n"
"_Alignas(4) const unsigned char vkf_spv_${NAME}[${bytes}] = {\n    ${body}\n};\n"
"const size_t vkf_spv_${NAME}_size = ${bytes};\n")
file(RENAME "${OUT}.tmp" "${OUT}")
