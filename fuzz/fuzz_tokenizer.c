/* tokenizer.json: load, then encode and decode a mixed text. */
#include "fuzz_common.h"
#include "vkformer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_file("tokenizer.json", data, size);
    vkf_tokenizer *tok;
    if (vkf_tokenizer_load(fuzz_dir(), &tok) != VKF_OK) return 0;
    static const char text[] = "Hello, world! naïve café 🥲 [MASK] <|endoftext|> 123 \xff\xfe the end";
    vkf_encoding e;
    if (vkf_tokenizer_encode(tok, text, sizeof text - 1, "a pair", VKF_TEXT_NUL, NULL, &e) == VKF_OK) {
        char *s = NULL;
        size_t n;
        if (vkf_tokenizer_decode(tok, e.ids, e.length, 0, &s, &n) == VKF_OK) vkf_free(s);
        vkf_encoding_free(&e);
    }
    vkf_tokenizer_destroy(tok);
    return 0;
}
