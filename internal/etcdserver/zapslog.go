package etcdserver

import (
	"context"
	"log/slog"
	"sync/atomic"

	"go.uber.org/zap/zapcore"
)

// slogCore is a zapcore.Core that hands etcd's error-level entries to slog.
type slogCore struct {
	lg    *slog.Logger
	attrs []slog.Attr
	quiet *atomic.Bool
	// dataDir is named when etcd stops the process (a fatal entry).
	dataDir string
}

func (c *slogCore) Enabled(l zapcore.Level) bool {
	return l >= zapcore.ErrorLevel && !c.quiet.Load()
}

func (c *slogCore) With(fields []zapcore.Field) zapcore.Core {
	cp := *c
	cp.attrs = append(append([]slog.Attr(nil), c.attrs...), fieldAttrs(fields)...)
	return &cp
}

func (c *slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *slogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	attrs := append(append([]slog.Attr(nil), c.attrs...), fieldAttrs(fields)...)
	if e.LoggerName != "" {
		attrs = append(attrs, slog.String("logger", e.LoggerName))
	}
	// zap entries carry no context.
	c.lg.LogAttrs(context.Background(), slog.LevelError, e.Message, attrs...)
	if e.Level >= zapcore.DPanicLevel {
		// etcd exits the process after a fatal entry: say what it means
		// in our own words first.
		c.lg.LogAttrs(context.Background(), slog.LevelError,
			"the embedded etcd hit a fatal error and is stopping fleetd; if the file system of its data dir is full, free space "+
				"(etcd needs about 64 MB for a new log segment) and start fleetd again: the data is kept",
			slog.String("data_dir", c.dataDir), slog.String("etcd_error", e.Message))
	}
	return nil
}

func (c *slogCore) Sync() error { return nil }

func fieldAttrs(fields []zapcore.Field) []slog.Attr {
	if len(fields) == 0 {
		return nil
	}
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fields {
		f.AddTo(enc)
	}
	attrs := make([]slog.Attr, 0, len(enc.Fields))
	for k, v := range enc.Fields {
		attrs = append(attrs, slog.Any(k, v))
	}
	return attrs
}
