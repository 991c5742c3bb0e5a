/* SentencePiece .model files: the first byte picks the transformers class
 * (its tokenizer_config.json), the rest is the protobuf; load, then encode
 * and decode a mixed text. */
#include "fuzz_common.h"
#include "vkformer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const classes[] = {"T5Tokenizer", "AlbertTokenizer", "LlamaTokenizer", "XLMRobertaTokenizer",
                                          "DebertaV2Tokenizer", NULL};
    if (!size) return 0;
    const char *cls = classes[data[0] % (sizeof classes / sizeof *classes)];
    char cfg[256];
    int n = cls ? snprintf(cfg, sizeof cfg, "{\"tokenizer_class\": \"%s\", \"legacy\": %s, \"do_lower_case\": %s}", cls,
                           data[0] & 0x40 ? "false" : "true", data[0] & 0x80 ? "true" : "false")
                : snprintf(cfg, sizeof cfg, "{}");
    fuzz_file("tokenizer_config.json", (const uint8_t *)cfg, (size_t)n);
    fuzz_file("spiece.model", data + 1, size - 1);
    vkf_tokenizer *tok;
    if (vkf_tokenizer_load(fuzz_dir(), &tok) != VKF_OK) return 0;
    static const char text[] = "Hello,  world! naïve café 🥲 <unk> </s> <extra_id_0> 1,234 \xff\xfe  ＡＢ ﬁ \t the end ";
    vkf_encoding e;
    if (vkf_tokenizer_encode(tok, text, sizeof text - 1, "a pair", VKF_TEXT_NUL, NULL, &e) == VKF_OK) {
        char *s = NULL;
        size_t len;
        if (vkf_tokenizer_decode(tok, e.ids, e.length, 0, &s, &len) == VKF_OK) vkf_free(s);
        if (vkf_tokenizer_decode(tok, e.ids, e.length, 1, &s, &len) == VKF_OK) vkf_free(s);
        vkf_encoding_free(&e);
    }
    vkf_tokenizer_destroy(tok);
    return 0;
}
