/* vkformer-rerank: ranks documents against a query with a cross-encoder, as
 * sentence-transformers' CrossEncoder.rank does; --json in the shape of
 * text-embeddings-inference's /rerank. Uses only the public API. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"

const char *tool_name = "vkformer-rerank";

static void usage(FILE *f)
{
    fprintf(f, "usage: vkformer-rerank --model DIR --query Q [options] [DOC... | --file F]\n"
               "Scores each document against the query with a cross-encoder (a one-logit\n"
               "sequence classifier such as cross-encoder/ms-marco-MiniLM-L6-v2 or\n"
               "BAAI/bge-reranker-base), as sentence-transformers' CrossEncoder.rank: the pairs\n"
               "in batched runs, a sigmoid over the logit (or the activation config.json\n"
               "names), and prints the documents best first. With no DOC: one document per\n"
               "line of --file, else of standard input.\n"
               "\n"
               "  -Q, --query Q          the query\n"
               "  -f, --file F           one document per line ('-': standard input)\n"
               "  -k, --top-k K          print the K best documents (default: all)\n"
               "      --return-text      --json: each result with its document's text\n");
    tool_model_usage(f);
    fprintf(f, "Output: per document, best first, its score and text; --json / --jsonl as\n"
               "text-embeddings-inference's /rerank: [{\"index\": i, \"score\": s}, ...] (with\n"
               "\"text\" under --return-text), one result per line.\n"
               "Exit status: 0 success, 1 a file or the model failed, 2 bad usage.\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"query", required_argument, 0, 'Q'}, {"file", required_argument, 0, 'f'},
                                             {"top-k", required_argument, 0, 'k'}, {"return-text", no_argument, 0, 2000},
                                             TOOL_MODEL_LONGOPTS, {0, 0, 0, 0}};
    tool_model_opts mo = {0};
    const char *query = NULL, *file = NULL;
    unsigned top_k = 0;
    int return_text = 0, c, rc = TOOL_CONTINUE;
    while (rc == TOOL_CONTINUE && (c = tool_getopt(argc, argv, "Q:f:k:" TOOL_MODEL_SHORTOPTS, longopts)) != -1) {
        if (c == 'Q') query = optarg;
        else if (c == 'f') file = optarg;
        else if (c == 'k') {
            if (!tool_parse_u32(optarg, 1, 1u << 24, &top_k)) rc = tool_usage_error("--top-k takes a count from 1, not '%s'", optarg);
        } else if (c == 2000) return_text = 1;
        else rc = tool_model_option(c, optarg, &mo, usage);
    }
    if (rc != TOOL_CONTINUE) return rc;
    if (!query) return tool_usage_error("give the query with --query");
    if (file && optind < argc) return tool_usage_error("give documents as arguments or with --file, not both");
    tool_texts docs = {0};
    if (optind < argc) {
        for (int i = optind; i < argc && rc == TOOL_CONTINUE; i++)
            if (tool_texts_add(&docs, argv[i], strlen(argv[i]), (size_t)(i - optind + 1)) != TOOL_OK) rc = TOOL_FAIL;
        rc = rc == TOOL_CONTINUE ? TOOL_OK : rc;
    } else {
        rc = tool_texts_from_file(&docs, file ? file : "-", 1);
    }
    if (rc == TOOL_OK && !docs.count) rc = tool_usage_error("no documents to rank");
    uint32_t n = (uint32_t)docs.count, k = top_k && top_k < n ? top_k : n;
    vkf_context *ctx = NULL;
    vkf_model *model = NULL;
    mo.task = "text-classification";
    if (rc == TOOL_OK) rc = tool_open_model(&mo, &ctx, &model);
    vkf_rank_result *r = rc == TOOL_OK ? calloc(n, sizeof *r) : NULL;
    if (rc == TOOL_OK && !r) rc = tool_fail("out of memory");
    double t0 = tool_now();
    tool_set_batch(&docs); /* "text N" in messages: the document's line or argument */
    if (rc == TOOL_OK && vkf_rank(model, query, (const char *const *)docs.s, n, k, r) != VKF_OK) rc = tool_fail_lib(ctx);
    tool_set_batch(NULL);
    double t_run = tool_now() - t0;
    for (uint32_t i = 0; i < k && rc == TOOL_OK; i++) {
        const char *text = docs.s[r[i].corpus_id];
        if (mo.out.format != TOOL_TEXT) { /* TEI's /rerank result */
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "index", r[i].corpus_id);
            cJSON_AddNumberToObject(e, "score", r[i].score);
            if (return_text) cJSON_AddStringToObject(e, "text", text);
            tool_emit(&mo.out, e);
        } else {
            tool_results_begin();
            printf("%.4f  %s\n", r[i].score, text);
        }
    }
    fflush(stdout);
    if (mo.out.format == TOOL_JSON && (rc == TOOL_OK || mo.out.items)) tool_emit_end(&mo.out);
    if (rc == TOOL_OK) tool_timing(&mo, t_run, n, "document");
    free(r);
    tool_texts_free(&docs);
    vkf_model_destroy(model);
    vkf_context_destroy(ctx);
    return rc;
}
