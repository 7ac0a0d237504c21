package store

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3 is a store in a bucket of an S3-compatible object store; any number of
// processes may share one. Each blob is one object, written by one PUT, which
// S3 makes visible whole or not at all.
type S3 struct {
	name      string
	bucket    string
	prefix    string // "" or ending in "/"
	client    *minio.Client
	transport *http.Transport
}

// s3Options are the settings of an s3:// URL after the environment and the
// query have been read.
type s3Options struct {
	endpoint, region, accessKey, secretKey, sessionToken string
	pathStyle                                            bool
}

// s3Settings reads the endpoint, region and credentials: the URL's query
// (endpoint, region, path_style) first, then the environment
// (TERSE_S3_ENDPOINT, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL; AWS_REGION,
// AWS_DEFAULT_REGION; AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_SESSION_TOKEN). Without an endpoint it is AWS itself; with one,
// path-style addressing is used unless path_style=false.
func s3Settings(name string, q url.Values, getenv func(string) string) (s3Options, error) {
	first := func(vals ...string) string {
		for _, v := range vals {
			if v != "" {
				return v
			}
		}
		return ""
	}
	for k := range q {
		switch k {
		case "endpoint", "region", "path_style":
		default:
			return s3Options{}, fmt.Errorf("store %s: unknown option %q (want endpoint, region or path_style)", name, k)
		}
	}
	o := s3Options{
		endpoint:     first(q.Get("endpoint"), getenv("TERSE_S3_ENDPOINT"), getenv("AWS_ENDPOINT_URL_S3"), getenv("AWS_ENDPOINT_URL")),
		region:       first(q.Get("region"), getenv("AWS_REGION"), getenv("AWS_DEFAULT_REGION"), "us-east-1"),
		accessKey:    getenv("AWS_ACCESS_KEY_ID"),
		secretKey:    getenv("AWS_SECRET_ACCESS_KEY"),
		sessionToken: getenv("AWS_SESSION_TOKEN"),
	}
	o.pathStyle = o.endpoint != ""
	switch v := q.Get("path_style"); v {
	case "":
	case "true", "1":
		o.pathStyle = true
	case "false", "0":
		o.pathStyle = false
	default:
		return s3Options{}, fmt.Errorf("store %s: path_style %q is not true or false", name, v)
	}
	if o.endpoint == "" {
		o.endpoint = "https://s3.amazonaws.com"
	}
	return o, nil
}

// openS3URL opens s3://BUCKET[/PREFIX][?endpoint=URL&region=R&path_style=B].
// The bucket must exist.
func openS3URL(ctx context.Context, u *url.URL) (*S3, error) {
	bucket := u.Host
	prefix := strings.Trim(u.Path, "/")
	name := "s3://" + bucket
	if prefix != "" {
		name += "/" + prefix
		prefix += "/"
	}
	if bucket == "" {
		return nil, fmt.Errorf("store %s: no bucket (want s3://BUCKET[/PREFIX])", u.Redacted())
	}
	o, err := s3Settings(name, u.Query(), os.Getenv)
	if err != nil {
		return nil, err
	}
	ep, err := url.Parse(o.endpoint)
	if err != nil || ep.Host == "" || (ep.Scheme != "http" && ep.Scheme != "https") {
		return nil, fmt.Errorf("store %s: endpoint %q is not an http(s)://HOST[:PORT] URL", name, o.endpoint)
	}
	lookup := minio.BucketLookupAuto
	if o.pathStyle {
		lookup = minio.BucketLookupPath
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	client, err := minio.New(ep.Host, &minio.Options{
		Transport:    transport,
		Creds:        credentials.NewStaticV4(o.accessKey, o.secretKey, o.sessionToken),
		Secure:       ep.Scheme == "https",
		Region:       o.region,
		BucketLookup: lookup,
	})
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", name, err)
	}
	ok, err := client.BucketExists(ctx, bucket)
	if err != nil {
		return nil, fmt.Errorf("store %s: cannot reach %s: %w", name, o.endpoint, err)
	}
	if !ok {
		return nil, fmt.Errorf("store %s: bucket %q does not exist at %s", name, bucket, o.endpoint)
	}
	return &S3{name: name, bucket: bucket, prefix: prefix, client: client, transport: transport}, nil
}

// notFound says whether err is S3's answer for a missing object.
func notFound(err error) bool {
	r := minio.ToErrorResponse(err)
	return r.Code == "NoSuchKey" || r.StatusCode == http.StatusNotFound
}

// Put implements Store.
func (s *S3) Put(ctx context.Context, key string, data []byte) error {
	if key == "" {
		return fmt.Errorf("store %s: empty key", s.name)
	}
	frame := encodeFrame(data)
	_, err := s.client.PutObject(ctx, s.bucket, s.prefix+key, bytes.NewReader(frame), int64(len(frame)),
		minio.PutObjectOptions{ContentType: "application/octet-stream"})
	if err != nil {
		return fmt.Errorf("store %s: key %q: %w", s.name, key, err)
	}
	return nil
}

// Get implements Store.
func (s *S3) Get(ctx context.Context, key string) ([]byte, error) {
	if key == "" {
		return nil, fmt.Errorf("store %s: key %q: %w", s.name, key, ErrNotFound)
	}
	obj, err := s.client.GetObject(ctx, s.bucket, s.prefix+key, minio.GetObjectOptions{})
	if err == nil {
		var v []byte
		v, err = io.ReadAll(obj)
		obj.Close()
		if err == nil {
			p, err := decodeFrame(v)
			if err != nil {
				return nil, fmt.Errorf("store %s: key %q: %w", s.name, key, err)
			}
			return p, nil
		}
	}
	if notFound(err) {
		return nil, fmt.Errorf("store %s: key %q: %w", s.name, key, ErrNotFound)
	}
	return nil, fmt.Errorf("store %s: key %q: %w", s.name, key, err)
}

// Has implements Store.
func (s *S3) Has(ctx context.Context, key string) (bool, error) {
	if key == "" {
		return false, nil
	}
	_, err := s.client.StatObject(ctx, s.bucket, s.prefix+key, minio.StatObjectOptions{})
	if err == nil {
		return true, nil
	}
	if notFound(err) {
		return false, nil
	}
	return false, fmt.Errorf("store %s: key %q: %w", s.name, key, err)
}

// Delete implements Store.
func (s *S3) Delete(ctx context.Context, key string) error {
	if key == "" {
		return nil
	}
	if err := s.client.RemoveObject(ctx, s.bucket, s.prefix+key, minio.RemoveObjectOptions{}); err != nil && !notFound(err) {
		return fmt.Errorf("store %s: key %q: %w", s.name, key, err)
	}
	return nil
}

// Close implements Store; it closes the client's idle connections.
func (s *S3) Close() error {
	s.transport.CloseIdleConnections()
	return nil
}
