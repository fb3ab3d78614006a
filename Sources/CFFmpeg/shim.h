// CFFmpeg shim: FFmpeg 5.1 (Debian 12) headers, plus static inline helpers for the
// macros that Swift cannot import. Imported only by EtokMedia.
#pragma once
#include <libavformat/avformat.h>
#include <libavcodec/avcodec.h>
#include <libavutil/avutil.h>
#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>
#include <libavutil/display.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
#include <libavutil/sha.h>

static inline int etok_averror(int errnum) { return AVERROR(errnum); }
static inline int etok_averror_eof(void) { return AVERROR_EOF; }
static inline int etok_averror_eagain(void) { return AVERROR(EAGAIN); }
static inline int64_t etok_av_nopts_value(void) { return AV_NOPTS_VALUE; }
static inline AVRational etok_av_time_base_q(void) { return AV_TIME_BASE_Q; }
/// Writes FFmpeg's message for `errnum` into `buf` (NUL-terminated).
static inline void etok_av_strerror(int errnum, char *buf, size_t size) { av_strerror(errnum, buf, size); }
