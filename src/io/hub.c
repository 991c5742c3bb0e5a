/* Model paths: a Hub id ("org/name") found in the local Hugging Face cache
 * the way transformers finds it offline, and what a directory that is not a
 * model holds. Nothing here touches the network. */
#include "io.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* "name" or "org/name": components of [A-Za-z0-9._-] starting with an
 * alphanumeric (so never "." or ".."), as the Hub allows. */
static bool hub_id(const char *s)
{
    int parts = 0;
    for (const char *p = s;; p++) {
        if (!isalnum((unsigned char)*p)) return false;
        while (isalnum((unsigned char)*p) || *p == '.' || *p == '_' || *p == '-') p++;
        parts++;
        if (!*p) return parts <= 2;
        if (*p != '/') return false;
    }
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The hub cache directory as huggingface_hub computes it. */
static bool hub_cache(char *out, size_t n)
{
    const char *v;
    if ((v = base_getenv("HF_HUB_CACHE"))) return (size_t)snprintf(out, n, "%s", v) < n;
    if ((v = base_getenv("HF_HOME"))) return (size_t)snprintf(out, n, "%s/hub", v) < n;
    if ((v = base_getenv("XDG_CACHE_HOME"))) return (size_t)snprintf(out, n, "%s/huggingface/hub", v) < n;
    if ((v = base_getenv("HOME"))) return (size_t)snprintf(out, n, "%s/.cache/huggingface/hub", v) < n;
    return false;
}

/* The snapshot refs/main names; without refs/main, the only snapshot. */
static vkf_status snapshot(base_diag *d, const char *id, const char *repo, char *out, size_t n)
{
    char path[4096], rev[128] = "";
    snprintf(path, sizeof path, "%s/refs/main", repo);
    FILE *f = fopen(path, "rb");
    if (f) {
        size_t got = fread(rev, 1, sizeof rev - 1, f);
        fclose(f);
        rev[got] = 0;
        rev[strcspn(rev, " \t\r\n")] = 0;
        if (!rev[0] || strchr(rev, '/') || !strcmp(rev, ".") || !strcmp(rev, ".."))
            return base_fail(d, VKF_ERROR_FORMAT, "%s: not a revision", path);
    } else {
        snprintf(path, sizeof path, "%s/snapshots", repo);
        DIR *dir = opendir(path);
        int found = 0;
        for (struct dirent *e; dir && (e = readdir(dir));)
            if (e->d_name[0] != '.' && found++ == 0) snprintf(rev, sizeof rev, "%s", e->d_name);
        if (dir) closedir(dir);
        if (found != 1)
            return base_fail(d, VKF_ERROR_IO, "%s: in the Hugging Face cache (%s) without refs/main and with %d snapshots: "
                             "give the snapshot directory", id, repo, found);
    }
    if ((size_t)snprintf(out, n, "%s/snapshots/%s", repo, rev) >= n || !is_dir(out))
        return base_fail(d, VKF_ERROR_IO, "%s: the Hugging Face cache names revision %s, whose snapshot %s is missing", id, rev, out);
    return VKF_OK;
}

vkf_status io_model_path(base_diag *d, const char *path, char *out, size_t n)
{
    if ((size_t)snprintf(out, n, "%s", path) >= n) return base_fail(d, VKF_ERROR_INVALID_ARGUMENT, "%.64s...: path too long", path);
    if (base_exists(path) || !hub_id(path)) return VKF_OK; /* the reader names what is wrong with it */
    char hub[3072], repo[3584];
    if (!hub_cache(hub, sizeof hub)) return VKF_OK;
    int len = snprintf(repo, sizeof repo, "%s/models--", hub);
    for (const char *p = path; *p && len < (int)sizeof repo - 3; p++) {
        if (*p == '/') repo[len++] = '-', repo[len++] = '-';
        else repo[len++] = *p;
    }
    repo[len] = 0;
    if (!is_dir(repo))
        return base_fail(d, VKF_ERROR_IO, "%s: no such file or directory, nor a model in the Hugging Face cache (%s); "
                         "nothing is downloaded", path, repo);
    return snapshot(d, path, repo, out, n);
}

vkf_status io_not_a_model(base_diag *d, const char *dir, const char *wanted)
{
    if (!is_dir(dir)) return VKF_OK;
    char list[1024] = "";
    size_t len = 0;
    int listed = 0, more = 0;
    DIR *h = opendir(dir);
    for (struct dirent *e; h && (e = readdir(h));) {
        if (e->d_name[0] == '.') continue;
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/%s/%s", dir, e->d_name, wanted);
        bool model = base_exists(sub);
        if (!model && !strncmp(e->d_name, "models--", 8)) { /* a Hugging Face cache: its ids */
            snprintf(sub, sizeof sub, "%s/%s/snapshots", dir, e->d_name);
            model = is_dir(sub);
        }
        if (!model) continue;
        char name[300];
        snprintf(name, sizeof name, "%s", e->d_name);
        if (!strncmp(name, "models--", 8)) { /* as the id that finds it */
            memmove(name, name + 8, strlen(name + 8) + 1);
            char *sep = strstr(name, "--");
            if (sep) *sep = '/', memmove(sep + 1, sep + 2, strlen(sep + 2) + 1);
        }
        if (listed == 8 || len + strlen(name) + 3 >= sizeof list) {
            more++;
            continue;
        }
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", listed++ ? ", " : "", name);
    }
    if (h) closedir(h);
    if (!listed) return base_fail(d, VKF_ERROR_IO, "%s: not a model directory (no %s in it, nor in a folder inside it)", dir, wanted);
    if (more) snprintf(list + len, sizeof list - len, " and %d more", more);
    return base_fail(d, VKF_ERROR_IO, "%s: not a model directory (no %s); model folders in it: %s", dir, wanted, list);
}
