/* zint_encode.c - the libzint side of labeld's IMb benchmarks (bench/compare.sh).
 *
 * Build: cc -O2 -o zint_encode bench/zint_encode.c -lzint   (Debian: libzint-dev)
 *
 * Modes (input lines are `TRACKING` or `TRACKING,ROUTING`, as for
 * `labelctl imb encode -`):
 *
 *   zint_encode --stream < lines
 *       For each line, encode with BARCODE_USPS_IMAIL (zint input `TRACKING-ROUTING`,
 *       the dash left out when there is no routing) and write the 65 bar letters
 *       (A, D, F, T) read from the symbol's module rows, or `error: <zint errtxt>`.
 *       This is the equivalent of `labelctl imb encode -`.
 *
 *   zint_encode --throughput N [--create-per-code] < lines
 *       Read all lines into memory and turn them into zint input strings first (not
 *       timed), run an untimed warm-up pass over up to 10,000 of them, then time N
 *       calls of ZBarcode_Encode, cycling through the inputs, in this one process and
 *       thread, with clock_gettime(CLOCK_MONOTONIC). Prints codes/second.
 *       By default one symbol is created once and ZBarcode_Clear()ed before every
 *       code: what a bulk user does. The clear is needed: re-encoding into a symbol
 *       without it leaves the previous code's modules set (checked on zint 2.11.1).
 *       With --create-per-code every code gets its own ZBarcode_Create() and
 *       ZBarcode_Delete() instead.
 *
 * Reading the symbol (zint 2.11, BARCODE_USPS_IMAIL): 3 rows x 129 columns; the 65
 * bars sit at even columns 0, 2, ..., 128; row 0 is the ascender zone, row 1 the
 * tracker (always set), row 2 the descender zone. A module is set when bit (col & 7)
 * of encoded_data[row][col >> 3] is 1 (zint's own module_is_set(), which is internal
 * to the library, so it is repeated here).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zint.h>

#define BARS 65

static int module_is_set(const struct zint_symbol *symbol, int row, int col) {
    return (symbol->encoded_data[row][col >> 3] >> (col & 7)) & 1;
}

/* Letters from an encoded symbol; returns 0 on success, -1 if the shape is not the
 * expected 3 x 129. */
static int symbol_letters(const struct zint_symbol *symbol, char out[BARS]) {
    int i;
    if (symbol->rows != 3 || symbol->width != 2 * BARS - 1) {
        return -1;
    }
    for (i = 0; i < BARS; i++) {
        int asc = module_is_set(symbol, 0, 2 * i);
        int desc = module_is_set(symbol, 2, 2 * i);
        out[i] = asc ? (desc ? 'F' : 'A') : (desc ? 'D' : 'T');
    }
    return 0;
}

/* `TRACKING[,ROUTING]` (line end already stripped) -> zint input `TRACKING[-ROUTING]`.
 * Returns the length written (at most cap - 1), NUL-terminated. */
static size_t zint_input(const char *line, size_t len, char *out, size_t cap) {
    size_t n = len < cap - 1 ? len : cap - 1;
    size_t i;
    for (i = 0; i < n; i++) {
        out[i] = line[i] == ',' ? '-' : line[i];
    }
    out[n] = '\0';
    return n;
}

static size_t strip_line_end(char *line, size_t len) {
    if (len > 0 && line[len - 1] == '\n') len--;
    if (len > 0 && line[len - 1] == '\r') len--;
    line[len] = '\0';
    return len;
}

static int run_stream(void) {
    struct zint_symbol *symbol = ZBarcode_Create();
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    char input[256];
    char letters[BARS + 1];
    static char outbuf[1 << 16];

    if (!symbol) {
        fprintf(stderr, "zint_encode: ZBarcode_Create failed\n");
        return 2;
    }
    setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
    letters[BARS] = '\n';
    while ((got = getline(&line, &cap, stdin)) != -1) {
        size_t len = strip_line_end(line, (size_t) got);
        size_t n = zint_input(line, len, input, sizeof input);
        int rc;
        ZBarcode_Clear(symbol);
        symbol->symbology = BARCODE_USPS_IMAIL;
        rc = ZBarcode_Encode(symbol, (const unsigned char *) input, (int) n);
        if (rc >= ZINT_ERROR) {
            printf("error: %s\n", symbol->errtxt);
        } else if (symbol_letters(symbol, letters) != 0) {
            printf("error: unexpected symbol shape %d x %d\n", symbol->rows, symbol->width);
        } else {
            fwrite(letters, 1, BARS + 1, stdout);
        }
    }
    free(line);
    ZBarcode_Delete(symbol);
    if (fflush(stdout) != 0) {
        perror("zint_encode: stdout");
        return 2;
    }
    return 0;
}

struct inputs {
    char (*text)[40];
    int *len;
    size_t count;
};

static int read_inputs(struct inputs *in) {
    char *line = NULL;
    size_t cap = 0, alloc = 0;
    ssize_t got;
    in->text = NULL;
    in->len = NULL;
    in->count = 0;
    while ((got = getline(&line, &cap, stdin)) != -1) {
        size_t len = strip_line_end(line, (size_t) got);
        if (in->count == alloc) {
            alloc = alloc ? alloc * 2 : 4096;
            in->text = realloc(in->text, alloc * sizeof *in->text);
            in->len = realloc(in->len, alloc * sizeof *in->len);
            if (!in->text || !in->len) return -1;
        }
        in->len[in->count] = (int) zint_input(line, len, in->text[in->count], sizeof in->text[0]);
        in->count++;
    }
    free(line);
    return in->count ? 0 : -1;
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

static int run_throughput(long n, int create_per_code) {
    struct inputs in;
    struct zint_symbol *symbol = NULL;
    unsigned long check = 0;
    long i, failures = 0;
    size_t k = 0;
    double start, elapsed;

    if (read_inputs(&in) != 0) {
        fprintf(stderr, "zint_encode: --throughput needs input lines on stdin\n");
        return 2;
    }
    if (!create_per_code) {
        symbol = ZBarcode_Create();
        if (!symbol) return 2;
    }
    /* Untimed warm-up: one pass over up to 10,000 inputs (caches, page faults). */
    for (k = 0; k < in.count && k < 10000; k++) {
        if (create_per_code) {
            symbol = ZBarcode_Create();
        } else {
            ZBarcode_Clear(symbol);
        }
        symbol->symbology = BARCODE_USPS_IMAIL;
        if (ZBarcode_Encode(symbol, (const unsigned char *) in.text[k], in.len[k]) >= ZINT_ERROR) failures++;
        if (create_per_code) ZBarcode_Delete(symbol);
    }
    k = 0;
    start = now_seconds();
    for (i = 0; i < n; i++) {
        int rc;
        if (create_per_code) {
            symbol = ZBarcode_Create();
        } else {
            ZBarcode_Clear(symbol);
        }
        symbol->symbology = BARCODE_USPS_IMAIL;
        rc = ZBarcode_Encode(symbol, (const unsigned char *) in.text[k], in.len[k]);
        if (rc >= ZINT_ERROR) failures++;
        /* Touch the result so nothing can be skipped. */
        check += symbol->encoded_data[0][i & 15] + symbol->encoded_data[2][(i >> 4) & 15];
        if (create_per_code) ZBarcode_Delete(symbol);
        if (++k == in.count) k = 0;
    }
    elapsed = now_seconds() - start;
    if (!create_per_code) ZBarcode_Delete(symbol);

    printf("zint %d BARCODE_USPS_IMAIL %s: %ld codes in %.6f s = %.0f codes/s "
           "(%.1f ns/code; %zu distinct inputs; failures %ld; check %lu)\n",
           ZBarcode_Version(), create_per_code ? "create/delete per code" : "one symbol, ZBarcode_Clear per code",
           n, elapsed, (double) n / elapsed, elapsed * 1e9 / (double) n, in.count, failures, check);
    free(in.text);
    free(in.len);
    return failures ? 1 : 0;
}

static int usage(void) {
    fprintf(stderr,
            "usage: zint_encode --stream < lines\n"
            "       zint_encode --throughput N [--create-per-code] < lines\n");
    return 2;
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "--stream") == 0) {
        return run_stream();
    }
    if ((argc == 3 || argc == 4) && strcmp(argv[1], "--throughput") == 0) {
        char *end;
        long n = strtol(argv[2], &end, 10);
        int per_code = 0;
        if (*end != '\0' || n <= 0) return usage();
        if (argc == 4) {
            if (strcmp(argv[3], "--create-per-code") != 0) return usage();
            per_code = 1;
        }
        return run_throughput(n, per_code);
    }
    return usage();
}
