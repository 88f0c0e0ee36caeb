// node-probe: what a Pod on the stack's node can reach, for the node's own test (busybox's wget cannot
// speak TLS to the API server, and crashes on plain HTTP in its static build). Static, standard library
// only. Prints one key=value line per check.
//
//	node-probe incluster         the API server through the in-cluster config: the `kubernetes` Service's
//	                             address from the environment, the service account's CA and token
//	node-probe http KEY URL      whether URL answers over HTTP (within 5 s)
package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

const sa = "/var/run/secrets/kubernetes.io/serviceaccount/"

func main() {
	if len(os.Args) == 4 && os.Args[1] == "http" {
		client := http.Client{Timeout: 5 * time.Second}
		resp, err := client.Get(os.Args[3])
		if err != nil {
			fmt.Printf("%s=unreached\n", os.Args[2])
			return
		}
		resp.Body.Close()
		fmt.Printf("%s=reached\n", os.Args[2])
		return
	}
	if len(os.Args) != 2 || os.Args[1] != "incluster" {
		fmt.Fprintln(os.Stderr, "usage: node-probe incluster | node-probe http KEY URL")
		os.Exit(2)
	}
	ca, err := os.ReadFile(sa + "ca.crt")
	check(err)
	token, err := os.ReadFile(sa + "token")
	check(err)
	namespace, err := os.ReadFile(sa + "namespace")
	check(err)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		check(fmt.Errorf("no certificate in %sca.crt", sa))
	}
	// Verified against the service account's CA, by the address the Service gives (no skipping).
	client := http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	base := "https://" + os.Getenv("KUBERNETES_SERVICE_HOST") + ":" + os.Getenv("KUBERNETES_SERVICE_PORT")
	get := func(path string) (int, []byte) {
		req, err := http.NewRequest("GET", base+path, nil)
		check(err)
		req.Header.Set("Authorization", "Bearer "+string(token))
		resp, err := client.Do(req)
		check(err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		check(err)
		return resp.StatusCode, body
	}
	_, body := get("/version")
	var version struct{ GitVersion string }
	check(json.Unmarshal(body, &version))
	fmt.Printf("version=%s\n", version.GitVersion)
	// The service account may read nothing in kube-system: the refusal names who the API server took it for.
	code, body := get("/api/v1/namespaces/kube-system/secrets")
	var status struct{ Message string }
	_ = json.Unmarshal(body, &status)
	fmt.Printf("secrets_status=%d\nsecrets_message=%s\nnamespace=%s\n", code, status.Message, namespace)
}

func check(err error) {
	if err != nil {
		fmt.Printf("error=%v\n", err)
		os.Exit(1)
	}
}
