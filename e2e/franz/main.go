// poolgate's end-to-end franz-go client, driven by tests/e2e_clients.rs: SASL/OAUTHBEARER
// (pkg/sasl/oauth) with a client_credentials token (client_secret_basic) from the token
// endpoint and the logicalCluster/identityPoolId extensions, the way Confluent Cloud documents
// OAuth clients. e2e/setup builds it into its cache. Every command prints one JSON line.
//
//	poolgate-franz --bootstrap H:P --token-url URL --client-id ID --client-secret S \
//	    --cluster LKC --pool POOL produce TOPIC COUNT PREFIX
//	poolgate-franz ... consume TOPIC GROUP COUNT
//	poolgate-franz --bootstrap H:P --plain consume TOPIC GROUP COUNT   (straight to a broker)
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
)

var (
	bootstrap    = flag.String("bootstrap", "", "host:port of the gateway (or of a broker with --plain)")
	tokenURL     = flag.String("token-url", "", "the token endpoint")
	clientID     = flag.String("client-id", "", "the OAuth client id")
	clientSecret = flag.String("client-secret", "", "the OAuth client secret")
	cluster      = flag.String("cluster", "", "the logicalCluster extension")
	pool         = flag.String("pool", "", "the identityPoolId extension")
	plain        = flag.Bool("plain", false, "no authentication (straight to a broker)")
	noPing       = flag.Bool("no-ping", false, "produce without logging in first (shows franz-go's retries)")
	timeout      = flag.Duration("timeout", 30*time.Second, "how long a command may take")
)

var tokensFetched atomic.Int64

// token asks the token endpoint for a client_credentials token with HTTP Basic client auth.
func token(ctx context.Context) (string, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, *tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.SetBasicAuth(url.QueryEscape(*clientID), url.QueryEscape(*clientSecret))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("token endpoint: HTTP %d", resp.StatusCode)
	}
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return "", err
	}
	tokensFetched.Add(1)
	return body.AccessToken, nil
}

// newClient makes a client; callers Ping it first, which logs in on one connection and returns
// that login's error (franz-go otherwise retries failed logins until the context ends).
func newClient(extra ...kgo.Opt) (*kgo.Client, error) {
	name := "poolgate-e2e-direct"
	if !*plain {
		name = "poolgate-e2e-" + *clientID
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(*bootstrap),
		kgo.ClientID(name),
		kgo.RetryTimeout(10 * time.Second),
		kgo.RequestRetries(2),
	}
	if !*plain {
		opts = append(opts, kgo.SASL(oauth.Oauth(func(ctx context.Context) (oauth.Auth, error) {
			t, err := token(ctx)
			return oauth.Auth{
				Token:      t,
				Extensions: map[string]string{"logicalCluster": *cluster, "identityPoolId": *pool},
			}, err
		})))
	}
	return kgo.NewClient(append(opts, extra...)...)
}

func produce(ctx context.Context, topic string, count int, prefix string) map[string]any {
	cl, err := newClient(kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		return failure(err)
	}
	defer cl.Close()
	if !*noPing {
		if err := cl.Ping(ctx); err != nil {
			return failure(err)
		}
	}
	records := make([]*kgo.Record, count)
	for i := range records {
		records[i] = &kgo.Record{
			Key:   []byte(fmt.Sprintf("%s-%d", prefix, i)),
			Value: []byte(fmt.Sprintf("%s message %d", prefix, i)),
		}
	}
	if err := cl.ProduceSync(ctx, records...).FirstErr(); err != nil {
		return failure(err)
	}
	return map[string]any{"ok": true, "delivered": count, "tokens": tokensFetched.Load()}
}

func consume(ctx context.Context, topic, group string, count int) map[string]any {
	cl, err := newClient(
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.SessionTimeout(10*time.Second),
		kgo.HeartbeatInterval(time.Second),
	)
	if err != nil {
		return failure(err)
	}
	defer cl.Close()
	if err := cl.Ping(ctx); err != nil {
		return failure(err)
	}
	values := []string{}
	for len(values) < count {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return failure(fmt.Errorf("consumed %d of %d in time: %w", len(values), count, err))
		}
		if errs := fetches.Errors(); len(errs) > 0 {
			return failure(errs[0].Err)
		}
		fetches.EachRecord(func(r *kgo.Record) { values = append(values, string(r.Value)) })
	}
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		return failure(err)
	}
	sort.Strings(values)
	return map[string]any{"ok": true, "values": values, "tokens": tokensFetched.Load()}
}

func failure(err error) map[string]any {
	return map[string]any{
		"ok":          false,
		"error":       fmt.Sprintf("%T", err),
		"message":     err.Error(),
		"auth_failed": errors.Is(err, kerr.SaslAuthenticationFailed),
		"tokens":      tokensFetched.Load(),
	}
}

func main() {
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	args := flag.Args()
	var out map[string]any
	switch {
	case len(args) == 4 && args[0] == "produce":
		n, _ := strconv.Atoi(args[2])
		out = produce(ctx, args[1], n, args[3])
	case len(args) == 4 && args[0] == "consume":
		n, _ := strconv.Atoi(args[3])
		out = consume(ctx, args[1], args[2], n)
	default:
		fmt.Fprintln(os.Stderr, "usage: poolgate-franz [flags] produce TOPIC COUNT PREFIX | consume TOPIC GROUP COUNT")
		os.Exit(2)
	}
	line, _ := json.Marshal(out)
	fmt.Println(string(line))
}
