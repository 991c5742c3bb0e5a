/* vkformer-transcribe: speech recognition with a wav2vec 2.0 or HuBERT CTC
 * checkpoint, as HF's automatic-speech-recognition pipeline gives it.
 * Uses only the public API (include/vkformer.h). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool.h"
#include "vkformer.h"

const char *tool_name = "vkformer-transcribe";

/* A clip longer than this with no --chunk-length is cut into AUTO_CHUNK_S chunks
 * (a whole minute's feature encoder outgrows lavapipe's 128 MiB bindings). */
#define AUTO_LIMIT_S 20.0
#define AUTO_CHUNK_S 20.0

static void usage(FILE *f)
{
    fprintf(f,
            "usage: vkformer-transcribe --model DIR [options] AUDIO...   ('-': a file on standard input)\n"
            "Transcribes speech with a CTC checkpoint (Wav2Vec2ForCTC, HubertForCTC) as HF's\n"
            "automatic-speech-recognition pipeline does: the model directory's vocab.json,\n"
            "tokenizer_config.json and preprocessor_config.json beside its weights.\n"
            "Audio: WAV, FLAC, Ogg (Vorbis, Opus); channels averaged to mono, resampled to\n"
            "the model's rate with libsoxr; up to 4 hours.\n"
            "\n"
            "  -c, --chunk-length S   cut the audio into chunks of S seconds run one at a time\n"
            "                         (the pipeline's chunk_length_s; 0: one run). Default: one\n"
            "                         run for clips up to %.0f s, %.0f s chunks for longer ones\n"
            "  -s, --stride-length S  seconds of context on each side of a chunk whose frames\n"
            "                         are dropped (S, or LEFT,RIGHT; default: chunk / 6)\n"
            "  -t, --timestamps       word timestamps (return_timestamps=\"word\")\n",
            AUTO_LIMIT_S, AUTO_CHUNK_S);
    tool_model_usage(f);
    fprintf(f, "Output: the text of each file on a line (\"FILE: text\" for several files; with\n"
               "--timestamps a line per word, \"  START END WORD\" in seconds); --json / --jsonl as\n"
               "HF's pipeline: {\"text\": ...} per file, with \"chunks\": [{\"text\": WORD,\n"
               "\"timestamp\": [START, END]}, ...] when asked.\n"
               "Exit status: 0 success, 1 a file, the model or the device failed, 2 bad usage.\n");
}

/* --stride-length S or LEFT,RIGHT into the API's convention (0 stays 0 only as a given 0: none). */
static int parse_stride(const char *arg, double *left, double *right)
{
    char buf[64];
    if (strlen(arg) >= sizeof buf) return 0;
    strcpy(buf, arg);
    char *comma = strchr(buf, ',');
    if (comma) *comma = 0;
    float l, r;
    if (!tool_parse_float(buf, &l) || l < 0 || (comma && (!tool_parse_float(comma + 1, &r) || r < 0))) return 0;
    if (!comma) r = l;
    *left = l > 0 ? l : -1, *right = r > 0 ? r : -1; /* the API reads 0 as "the default", a negative stride as none */
    return 1;
}

typedef struct progress_state {
    int quiet;
    const char *name;
    uint32_t rate;
} progress_state;

static void show_progress(void *user, uint64_t done, uint64_t total)
{
    const progress_state *p = user;
    if (!tool_progress_on(p->quiet) || done >= total) return;
    fprintf(stderr, "\r%s: %s: %.0f of %.0f s", tool_name, p->name, (double)done / p->rate, (double)total / p->rate);
}

static void print_result(tool_model_opts *o, const char *name, int several, const vkf_transcription *t, int stamps)
{
    if (o->out.format != TOOL_TEXT) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "text", t->text);
        if (stamps) {
            cJSON *chunks = cJSON_AddArrayToObject(e, "chunks");
            for (uint32_t i = 0; i < t->n_words; i++) {
                cJSON *w = cJSON_CreateObject();
                cJSON_AddStringToObject(w, "text", t->words[i].text);
                double se[2] = {t->words[i].start, t->words[i].end};
                cJSON_AddItemToObject(w, "timestamp", cJSON_CreateDoubleArray(se, 2));
                cJSON_AddItemToArray(chunks, w);
            }
        }
        tool_emit(&o->out, e);
        return;
    }
    tool_results_begin();
    if (several) printf("%s: ", name);
    printf("%s\n", t->text);
    for (uint32_t i = 0; stamps && i < t->n_words; i++) printf("  %8.3f %8.3f  %s\n", t->words[i].start, t->words[i].end, t->words[i].text);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"chunk-length", required_argument, 0, 'c'}, {"stride-length", required_argument, 0, 's'},
                                             {"timestamps", no_argument, 0, 't'}, TOOL_MODEL_LONGOPTS, {0, 0, 0, 0}};
    tool_model_opts mo = {0};
    vkf_transcribe_desc td = {0};
    int chunk_given = 0, stride_given = 0, c, rc = TOOL_CONTINUE;
    float f;
    while (rc == TOOL_CONTINUE && (c = tool_getopt(argc, argv, "c:s:t" TOOL_MODEL_SHORTOPTS, longopts)) != -1) {
        switch (c) {
        case 'c':
            if (!tool_parse_float(optarg, &f) || f < 0 || f > 3600) rc = tool_usage_error("--chunk-length takes seconds in [0, 3600], not '%s'", optarg);
            td.chunk_length_s = f, chunk_given = 1;
            break;
        case 's':
            if (!parse_stride(optarg, &td.stride_left_s, &td.stride_right_s))
                rc = tool_usage_error("--stride-length takes S or LEFT,RIGHT (seconds, not negative), not '%s'", optarg);
            stride_given = 1;
            break;
        case 't': td.word_timestamps = 1; break;
        default: rc = tool_model_option(c, optarg, &mo, usage);
        }
    }
    if (rc != TOOL_CONTINUE) return rc;
    if (!mo.model) return tool_usage_error("give --model DIR: a speech recognition checkpoint (Wav2Vec2ForCTC, HubertForCTC)");
    if (optind == argc) return tool_usage_error("give at least one audio file ('-': standard input)");
    if (stride_given && td.chunk_length_s == 0) return tool_usage_error("--stride-length is for chunks: give --chunk-length too");
    int n = argc - optind, stdin_used = 0;
    for (int i = optind; i < argc; i++)
        if (!strcmp(argv[i], "-") && stdin_used++) return tool_usage_error("standard input ('-') can be read once");
    mo.task = "automatic-speech-recognition";
    vkf_context *ctx = NULL;
    vkf_model *model = NULL;
    rc = tool_open_model(&mo, &ctx, &model);
    vkf_model_info info;
    if (rc == TOOL_OK) {
        vkf_model_get_info(model, &info);
        tool_model_line(&mo, ctx, &info);
    }
    double t_run = 0, seconds = 0;
    for (int i = optind; i < argc && rc == TOOL_OK; i++) {
        const char *path = argv[i], *name = strcmp(path, "-") ? path : "standard input";
        vkf_audio a;
        if ((rc = tool_load_audio(path, info.sampling_rate, &a)) != TOOL_OK) break;
        double len = (double)a.frames / a.rate;
        vkf_transcribe_desc d = td;
        if (!chunk_given && len > AUTO_LIMIT_S) {
            d.chunk_length_s = AUTO_CHUNK_S;
            if (!mo.quiet)
                fprintf(stderr, "%s: %s: %.0f s of audio: transcribed in %.0f s chunks (--chunk-length 0: one run)\n", tool_name, name, len,
                        AUTO_CHUNK_S);
        }
        progress_state ps = {mo.quiet, name, a.rate};
        d.progress = show_progress, d.progress_user = &ps;
        vkf_transcription t;
        double t0 = tool_now();
        vkf_status st = vkf_transcribe_audio(model, a.samples, a.frames, a.rate, &d, &t);
        t_run += tool_now() - t0;
        seconds += len;
        if (st != VKF_OK) rc = tool_fail("%s: %s", name, vkf_last_error(ctx));
        else print_result(&mo, name, n > 1, &t, td.word_timestamps);
        vkf_transcription_free(&t);
        vkf_audio_free(&a);
    }
    if (mo.out.format == TOOL_JSON && (rc == TOOL_OK || mo.out.items)) tool_emit_end(&mo.out);
    if (rc == TOOL_OK && !mo.quiet) { /* the timing line, with the real-time factor */
        tool_progress_break();
        fprintf(stderr, "%s: load %.0f ms, %d file%s (%.1f s of audio) in %.1f ms, %.1fx real time\n", tool_name, mo.load_s * 1e3, n,
                n == 1 ? "" : "s", seconds, t_run * 1e3, t_run > 0 ? seconds / t_run : 0.0);
    }
    vkf_model_destroy(model);
    vkf_context_destroy(ctx);
    return rc;
}
