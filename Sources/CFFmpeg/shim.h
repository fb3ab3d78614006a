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

/// Decoder and demuxer error counting (EtokMedia's DecoderErrorLog; call these from that one Swift
/// file only, as the static state lives where the header is compiled). The log callback counts
/// messages at error level or worse from codec contexts (kind 0) and format contexts (kind 1)
/// whose `opaque` is set, by calling `note(opaque, kind)`, then prints every message as FFmpeg's
/// default callback does (honouring av_log_set_level). A C function, as Swift cannot take a
/// va_list in a C callback.
static void (*etok_error_note)(void *opaque, int kind) = 0;
static inline void etok_counting_log_callback(void *avcl, int level, const char *fmt, va_list vl) {
    if (level <= AV_LOG_ERROR && avcl && etok_error_note) {
        const AVClass *cls = *(const AVClass **)avcl;
        if (cls == avcodec_get_class() && ((AVCodecContext *)avcl)->opaque)
            etok_error_note(((AVCodecContext *)avcl)->opaque, 0);
        else if (cls == avformat_get_class() && ((AVFormatContext *)avcl)->opaque)
            etok_error_note(((AVFormatContext *)avcl)->opaque, 1);
    }
    av_log_default_callback(avcl, level, fmt, vl);
}
static inline void etok_install_error_counter(void (*note)(void *opaque, int kind)) {
    etok_error_note = note;
    av_log_set_callback(etok_counting_log_callback);
}
