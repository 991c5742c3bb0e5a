# Every embedded SPIR-V module: vkf_shader(<name> <source> [DEFINES ...]).
# vkf_shader_f32_f16 adds <name>_f16 with STORAGE_F16 (tensors stored as half).
vkf_shader_f32_f16(eltwise eltwise.comp)
vkf_shader_f32_f16(eltwise_vec4 eltwise.comp DEFINES VEC4=1)
vkf_shader_f32_f16(matmul_cpu matmul_cpu.comp)
vkf_shader_f32_f16(matmul_tiled matmul_tiled.comp)
vkf_shader_f32_f16(matmul_small matmul_small.comp)
vkf_shader_reduce(softmax softmax.comp)
vkf_shader_reduce(layernorm layernorm.comp)
vkf_shader_reduce(rows rows.comp)
vkf_shader_f32_f16(attention attention.comp)
vkf_shader_f32_f16(embed embed.comp)
vkf_shader_f32_f16(embed_texel embed.comp DEFINES TEXEL_TABLE=1)
vkf_shader_f32_f16(patchify patchify.comp)
