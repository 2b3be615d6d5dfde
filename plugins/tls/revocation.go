package tlshandshake

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/probe-dev/probe/core/sdk"
)

// The failure classes of revocation checking.
const (
	ClassCertRevoked       sdk.Class = "tls.cert_revoked"       // the certificate is revoked
	ClassRevocationUnknown sdk.Class = "tls.revocation_unknown" // its revocation status could not be had
)

// The revocation settings.
const (
	revocationOff  = "off"
	revocationOCSP = "ocsp"
	revocationCRL  = "crl"
)

// Bounds on what a responder or distribution point may send.
const (
	maxOCSPResponse = 1 << 20
	maxCRL          = 32 << 20
)

// revocation is the outcome of a revocation check of a leaf certificate.
type revocation struct {
	status    string        // "good", "revoked", "unknown", or "none" when the certificate names nowhere to ask
	source    string        // "stapled", "ocsp", "crl"; "" with "none"
	stapled   bool          // the server stapled an OCSP response (with revocation "ocsp")
	took      time.Duration // asking the responder or fetching the CRL; 0 for a staple
	revokedAt time.Time
	err       error // why the status is "unknown"
}

// attrs adds the check's facts to a tls phase's attrs.
func (r *revocation) attrs(m map[string]any, mode string) {
	m["revocation_status"] = r.status
	if r.source != "" {
		m["revocation_source"] = r.source
	}
	if r.source == revocationOCSP || r.source == revocationCRL {
		m["revocation_ms"] = sdk.Milliseconds(r.took)
	}
	if mode == revocationOCSP {
		m["ocsp_stapled"] = r.stapled
	}
	if !r.revokedAt.IsZero() {
		m["revoked_at"] = r.revokedAt.UTC().Format(time.RFC3339)
	}
	if r.err != nil {
		m["revocation_error"] = r.err.Error()
	}
}

// failure returns the failure the check makes of the handshake, nil for a
// good certificate or one that names nowhere to ask.
func (r *revocation) failure(ctx context.Context) *sdk.Failure {
	switch r.status {
	case "revoked":
		return &sdk.Failure{Phase: sdk.PhaseTLS, Class: ClassCertRevoked,
			Message: fmt.Sprintf("certificate revoked at %s (%s)", r.revokedAt.UTC().Format(time.RFC3339), r.source)}
	case "unknown":
		class := ClassRevocationUnknown
		if errors.Is(ctx.Err(), context.Canceled) {
			class = sdk.ClassCanceled
		}
		return &sdk.Failure{Phase: sdk.PhaseTLS, Class: class, Message: "revocation status unknown: " + r.err.Error()}
	}
	return nil
}

// checkRevocation checks leaf, issued by issuer, as mode says: "ocsp" takes
// the stapled response first, then asks the certificate's OCSP responder;
// "crl" fetches its CRL distribution point. Both are bounded by ctx.
func checkRevocation(ctx context.Context, mode string, leaf, issuer *x509.Certificate, stapled []byte) *revocation {
	if mode == revocationOCSP {
		return checkOCSP(ctx, leaf, issuer, stapled)
	}
	return checkCRL(ctx, leaf, issuer)
}

func checkOCSP(ctx context.Context, leaf, issuer *x509.Certificate, stapled []byte) *revocation {
	r := &revocation{stapled: len(stapled) > 0}
	var stapleErr error
	if r.stapled {
		resp, err := ocsp.ParseResponseForCert(stapled, leaf, issuer)
		if err == nil {
			r.source = "stapled"
			r.fromOCSP(resp)
			return r
		}
		stapleErr = fmt.Errorf("stapled OCSP response: %w", err) // ask the responder instead
	}
	url := firstHTTP(leaf.OCSPServer)
	if url == "" {
		if stapleErr != nil {
			r.status, r.source, r.err = "unknown", "stapled", stapleErr
			return r
		}
		r.status = "none"
		return r
	}
	r.source = revocationOCSP
	req, err := ocsp.CreateRequest(leaf, issuer, &ocsp.RequestOptions{Hash: crypto.SHA1})
	if err != nil {
		r.status, r.err = "unknown", fmt.Errorf("OCSP request: %w", err)
		return r
	}
	start := time.Now()
	body, err := fetch(ctx, http.MethodPost, url, "application/ocsp-request", req, maxOCSPResponse)
	var resp *ocsp.Response
	if err == nil {
		if resp, err = ocsp.ParseResponseForCert(body, leaf, issuer); err != nil {
			err = fmt.Errorf("OCSP responder %s: %w", url, err)
		}
	}
	r.took = time.Since(start)
	if err != nil {
		r.status, r.err = "unknown", err
		return r
	}
	r.fromOCSP(resp)
	return r
}

// fromOCSP reads a verified OCSP response's verdict.
func (r *revocation) fromOCSP(resp *ocsp.Response) {
	switch {
	case !resp.NextUpdate.IsZero() && time.Now().After(resp.NextUpdate):
		r.status, r.err = "unknown", fmt.Errorf("OCSP response expired at %s", resp.NextUpdate.UTC().Format(time.RFC3339))
	case resp.Status == ocsp.Good:
		r.status = "good"
	case resp.Status == ocsp.Revoked:
		r.status, r.revokedAt = "revoked", resp.RevokedAt
	default:
		r.status, r.err = "unknown", errors.New("the OCSP responder does not know the certificate")
	}
}

func checkCRL(ctx context.Context, leaf, issuer *x509.Certificate) *revocation {
	r := &revocation{}
	url := firstHTTP(leaf.CRLDistributionPoints)
	if url == "" {
		r.status = "none"
		return r
	}
	r.source = revocationCRL
	start := time.Now()
	body, err := fetch(ctx, http.MethodGet, url, "", nil, maxCRL)
	var list *x509.RevocationList
	if err == nil {
		if b, _ := pem.Decode(body); b != nil && b.Type == "X509 CRL" {
			body = b.Bytes
		}
		if list, err = x509.ParseRevocationList(body); err == nil {
			err = list.CheckSignatureFrom(issuer)
		}
		if err != nil {
			err = fmt.Errorf("CRL %s: %w", url, err)
		}
	}
	r.took = time.Since(start)
	switch {
	case err != nil:
		r.status, r.err = "unknown", err
	case !list.NextUpdate.IsZero() && time.Now().After(list.NextUpdate):
		r.status, r.err = "unknown", fmt.Errorf("CRL %s expired at %s", url, list.NextUpdate.UTC().Format(time.RFC3339))
	default:
		r.status = "good"
		for _, e := range list.RevokedCertificateEntries {
			if e.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
				r.status, r.revokedAt = "revoked", e.RevocationTime
				break
			}
		}
	}
	return r
}

// firstHTTP returns the first http or https URL of urls, "" for none.
func firstHTTP(urls []string) string {
	for _, u := range urls {
		if strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://") {
			return u
		}
	}
	return ""
}

// fetchClient fetches OCSP responses and CRLs: no proxy from the
// environment, no connection kept (each check is measured whole).
var fetchClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true, MaxResponseHeaderBytes: 16 << 10}}

// fetch sends a request to url within ctx and returns the body of a 200
// response, at most limit bytes.
func fetch(ctx context.Context, method, url, contentType string, body []byte, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, url, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := fetchClient.Do(req)
	if err != nil {
		return nil, err // *url.Error names the method and URL
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s: HTTP %s", method, url, resp.Status)
	}
	out, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("%s %s: %w", method, url, err)
	case int64(len(out)) > limit:
		return nil, fmt.Errorf("%s %s: response over %d bytes", method, url, limit)
	}
	return out, nil
}
