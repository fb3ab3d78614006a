/*
 * etok.h — the C ABI of etok (ElasticTok video tokenizer), for other languages.
 *
 * Build: swift build -c release --product etok_c   → .build/release/libetok_c.so (Linux).
 * The library carries the Swift runtime through its rpath; the default model is found in
 * etok_EtokTokenizer.resources/ beside it (as SwiftPM builds it), or as default.safetensors
 * beside it. python/ (package `etok`) is the reference binding, through ctypes.
 *
 * One implementation: every function here runs the library code that the `etok` command runs
 * (StreamReport for reading, EncodeRun and DecodeRun for encoding and decoding), so results are
 * the command's bit for bit when both use the same OpenBLAS kernels (etok_blas_kernels).
 *
 * Conventions
 *   - Functions that can fail return an int status: ETOK_OK (0) or one of ETOK_E_*. The message
 *     of the calling thread's last failure is etok_last_error(); it names the file and the
 *     problem in one line, as the command prints it. Bad input never crashes the caller. The
 *     status comes from the same classification of errors as the command's exit status
 *     (ErrorCategory in the library), coarser: see the table at the status codes.
 *   - Handles are opaque. Whoever opens one closes it, once, after every other call on it.
 *   - Strings and buffers the library returns through a handle belong to that handle and live
 *     until it is closed. Strings returned through a `char **` out-parameter belong to the caller:
 *     release them with etok_string_free.
 *   - Caller buffers are written, never kept.
 *   - Threads: a reader and a model are immutable after open (any number of threads may use
 *     them). Encoding and decoding calls are independent of each other, also through one model;
 *     each blocks until done and uses its own worker threads (options.threads; 0: one per core).
 */
#ifndef ETOK_H
#define ETOK_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes, and the command's exit statuses of the same errors. */
#define ETOK_OK        0
#define ETOK_E_ARGUMENT 1  /* a bad argument: NULL, a setting out of range, a buffer too small (64) */
#define ETOK_E_INPUT    2  /* the input is missing or unreadable: no such file, a directory (66) */
#define ETOK_E_DATA     3  /* unusable data: not .etok/video, damaged, another model's stream (65) */
#define ETOK_E_OUTPUT   4  /* the output cannot be created (exists and no overwrite) or written,
                              or its pipe was closed (73, 74, 141) */
#define ETOK_E_OTHER    5  /* anything else: unsupported media (69), an FFmpeg call that failed
                              unexpectedly (70), a read error after open (74), interrupted (130,
                              143), a bug (1) */

/* The library's version ("0.1.0"); static storage. */
const char *etok_version(void);
/* The calling thread's last error message, or NULL when no call on this thread has failed.
 * Valid until the next failing call on the same thread. */
const char *etok_last_error(void);
/* Releases a string returned through a `char **` out-parameter (NULL is ignored). */
void etok_string_free(char *s);
/* The OpenBLAS core loaded in this process and the one the etok command chooses on this CPU
 * ("" if it leaves the choice to OpenBLAS). When they differ, results may differ from the
 * command's in the last bits: set OPENBLAS_CORETYPE to the chosen one before loading. Static. */
void etok_blas_kernels(const char **loaded, const char **chosen);

/* ---- Reading (no model needed) ------------------------------------------------------------ */

typedef struct etok_reader etok_reader;

/* Per-block figures. value_offset/value_count locate the block's tokens in the concatenation
 * of all blocks' values: `kept` int32 FSQ indices, or `kept * dim` float32 VAE latents. */
typedef struct etok_block_info {
    int64_t index;        /* the block's index in the stream (gaps after skipped damage) */
    int64_t chunk;        /* its chunk, named by the chunk's first block: the context resets there */
    int64_t pts;          /* first frame's time, in the header's source.time_base */
    double seconds;       /* the same in seconds */
    double mse;           /* reconstruction MSE the encoder measured; -1: not measured (imported) */
    int64_t value_offset;
    int64_t value_count;
    int32_t kept;         /* kept tokens; 0: a repeat block (no values; the previous frame again) */
    int32_t frames;       /* frames in the block (frames_per_block; fewer for a last block) */
} etok_block_info;

/* Reads the .etok stream at `path` ("-": stdin) whole, as `etok export` does, and checks it.
 * Damage (a bad CRC, a truncated file) is ETOK_E_DATA unless skip_damaged is non-zero; then
 * the readable blocks are kept and the header JSON's health.damaged_ranges lists what was lost.
 * Memory: the stream's tokens (about 4 bytes a token). *out is NULL on failure. */
int etok_reader_open(const char *path, int32_t skip_damaged, etok_reader **out);
/* Closes a reader (NULL is ignored); everything it handed out dies with it. */
void etok_reader_close(etok_reader *r);
/* The header and health as JSON: `etok info --json` without per-block figures (model with name,
 * sha256, frames_per_block, bottleneck, ...; encoding with threshold, fps; source; health;
 * rate_control with mode, target and achieved, for a stream encoded under rate control).
 * Owned by the reader. */
const char *etok_reader_header_json(const etok_reader *r);
/* Readable blocks; token kind (0: FSQ, int32 indices; 1: VAE, float32 latents); values per
 * token (1 for FSQ); values in all blocks together. Any out-pointer may be NULL. */
int etok_reader_shape(const etok_reader *r, int64_t *blocks, int32_t *kind, int64_t *dim, int64_t *values);
/* Block i's figures (0 <= i < blocks). */
int etok_reader_block(const etok_reader *r, int64_t i, etok_block_info *out);
/* Copies the values of blocks first .. first+count-1 into dst (int32 or float32 by kind), which
 * holds `capacity` values; too small is ETOK_E_ARGUMENT and nothing is written. */
int etok_reader_copy_tokens(const etok_reader *r, int64_t first, int64_t count, void *dst, int64_t capacity);
/* Copies every block's figures into arrays of `blocks` entries (each may be NULL): kept, frames,
 * stream index, chunk, start seconds, measured MSE (-1: none). One call for a whole stream. */
int etok_reader_copy_blocks(const etok_reader *r, int32_t *kept, int32_t *frames, int64_t *index,
                            int64_t *chunk, double *seconds, double *mse);
/* The position (0 .. blocks-1) of the block showing time t seconds: the last block starting at
 * or before t (the first block if t is earlier); -1 for none readable or a NULL reader. */
int64_t etok_reader_seek(const etok_reader *r, double t);

/* ---- Models ------------------------------------------------------------------------------ */

typedef struct etok_model etok_model;

/* Loads and checks the weights at `path` (.safetensors; NULL: the default model, found beside
 * this library, else where the etok command looks) once, for any number of encodes and decodes
 * from any threads. Memory: the weights as float32. *out is NULL on failure (ETOK_E_INPUT: no
 * such file; ETOK_E_DATA: a file that fails the model checks). */
int etok_model_open(const char *path, etok_model **out);
/* The model as JSON: name, path, sha256, image_size [h, w], frames_per_block, min_toks,
 * max_toks, context_blocks, bottleneck ("fsq"/"vae"), calibrated_threshold (when the file has
 * one). Owned by the model. */
const char *etok_model_info_json(const etok_model *m);
/* Releases a model (NULL is ignored), after every call through it has returned. */
void etok_model_close(etok_model *m);

/* ---- Encoding and decoding (through an open model) -------------------------------------- */

/* Encode options: all zero (memset) is `etok encode`'s defaults. Field order is the ABI. */
typedef struct etok_encode_options {
    const char *search;           /* "fast" (NULL), "binary" or "linear" */
    const char *fit;              /* "crop" (NULL), "pad" or "stretch" */
    const char *input_format;     /* FFmpeg demuxer; NULL probes; "rawvideo" needs raw_width/height */
    const char *raw_pixel_format; /* of raw input; NULL: "rgb24" */
    double threshold;             /* MSE on the [-1,1] scale; 0: psnr, else the model's calibrated one */
    double psnr;                  /* the threshold in dB instead; 0: unset */
    double fps;                   /* resample to this rate (--fps); 0 keeps every frame */
    double raw_rate;              /* frame rate of raw input; 0: 25 */
    int32_t fixed;                /* keep exactly this many tokens per block; 0: search */
    int32_t chunk;                /* blocks per chunk; 0: the model's context */
    int32_t threads;              /* chunks at once; 0: one per core (output is the same for any) */
    int32_t overwrite;            /* replace an existing output */
    int32_t raw_width, raw_height;
    int32_t skip_damaged;         /* an input that ends early keeps the frames before the cut */
    int32_t no_repeat;            /* never write repeat blocks (--no-repeat); 0: write them where a
                                   * threshold encode finds the previous frame good enough, or rate
                                   * control finds them worth their tokens */
    /* Rate control (since 0.1.0's rate control; appended, so the fields above keep their places):
     * a token count instead of the threshold, as `etok encode`'s options of the same names. */
    double tokens_per_second;     /* --tokens-per-second; 0: none */
    int64_t budget;               /* --budget: tokens for the whole input (read twice); 0: none */
    int32_t max_tokens_per_chunk; /* --max-tokens-per-chunk; 0: none */
    const char *rate_objective;   /* --rate-objective: "balanced" (NULL), "psnr" or "mse" */
} etok_encode_options;

/* Decode options: all zero is `etok decode`'s defaults. */
typedef struct etok_decode_options {
    int32_t threads;
    int32_t skip_damaged;         /* decode what is readable instead of failing on damage */
    int32_t overwrite;
    int32_t allow_model_mismatch; /* decode a stream that names other weights (shapes still checked) */
} etok_decode_options;

/* `etok encode input --model M -o output` with `opts` (NULL: defaults), M the model `m` was
 * opened from. The output is written under a temporary name and renamed at the end: nothing is
 * left on failure. *summary (may be NULL) receives `--stats`'s JSON, the caller's to free. */
int etok_encode_file(const etok_model *m, const char *input, const char *output, const etok_encode_options *opts,
                     char **summary);
/* Encodes `count` frames of height x width RGB24 (frame after frame, rows without padding) at
 * `rate` frames per second into `output`: exactly `etok encode frames.rgb --input-format rawvideo
 * --size WxH --rate R` (the header names the source frames.rgb). The frames are fitted to the
 * model like any video (opts->fit). The input fields of opts are ignored. */
int etok_encode_frames(const etok_model *m, const uint8_t *rgb, int64_t count, int64_t height, int64_t width,
                       double rate, const char *output, const etok_encode_options *opts, char **summary);
/* `etok decode input --model M -o output` (.mp4, .y4m, .rgb, .png, or a %05d PNG pattern). */
int etok_decode_file(const etok_model *m, const char *input, const char *output, const etok_decode_options *opts,
                     char **summary);

typedef struct etok_frames etok_frames;
/* Decodes `input` into frames the library holds: count x height x width x 3 bytes (RGB24, the
 * model's resolution), the same bytes `etok decode input -o x.rgb` writes. Memory: all frames. */
int etok_decode_frames(const etok_model *m, const char *input, const etok_decode_options *opts, etok_frames **out);
void etok_frames_shape(const etok_frames *f, int64_t *count, int64_t *height, int64_t *width);
/* The frames' bytes; owned by f. */
const uint8_t *etok_frames_data(const etok_frames *f);
/* The decode's summary JSON (frames, blocks, height, width, skipped ranges); owned by f. */
const char *etok_frames_summary(const etok_frames *f);
void etok_frames_free(etok_frames *f);

#ifdef __cplusplus
}
#endif
#endif /* ETOK_H */
