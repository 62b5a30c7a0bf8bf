#!/usr/bin/env python3
"""The playground in a real browser: headless Chromium, driven through chromedriver's
WebDriver HTTP API (Python's standard library only), loads web/dist from a static server
on localhost and checks the page against the `kubenat` command:

- with no click, #journey lists request 1's hops, the same places in the same order as
  `kubenat simulate -o json`, every rewrite's addresses before and after, and the pod that
  served it; the page's report JSON equals the CLI's (same seed, same result); it shows
  within the time budget of navigation start;
- a trace gives the verdict and endpoint of `kubenat trace -o json`;
- a bad manifest is answered with its line and field;
- killing MariaDB reports what `kubenat simulate examples/miempresa/failover.yaml` does;
- another seed gives the CLI's report for that seed;
- the labels switch to English;
- a screenshot is saved.

    python3 web/test/browser.py --cli target/debug/kubenat --screenshot playground.png
"""

import argparse
import base64
import functools
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NOTES = ["--cluster", "examples/miempresa/cluster.yaml", "--cluster", "examples/miempresa/kube-proxy.yaml"]
BAD_MANIFEST = """apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  clusterIP: 10.96.0.5
  ports:
  - port: 70000
"""
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(directory):
    """A static file server on localhost, in a thread; returns its base URL."""
    class Handler(http.server.SimpleHTTPRequestHandler):
        # Streaming compilation wants application/wasm; JavaScript modules a JS type.
        extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                          ".wasm": "application/wasm", ".js": "text/javascript"}

        def log_message(self, *args):
            pass

    handler = functools.partial(Handler, directory=directory)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/"


class WebDriver:
    """Just enough of the W3C WebDriver protocol."""

    def __init__(self, chromedriver, chromium):
        port = free_port()
        self.process = subprocess.Popen(
            [chromedriver, f"--port={port}", "--allowed-ips=127.0.0.1"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 30
        while True:
            try:
                if self.call("GET", "/status")["ready"]:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError("chromedriver did not start")
            time.sleep(0.1)
        args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,2200", "--no-first-run", "--disable-extensions"]
        caps = {"capabilities": {"alwaysMatch": {"goog:chromeOptions": {"binary": chromium, "args": args}}}}
        self.session = self.call("POST", "/session", caps)["sessionId"]

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.load(response)["value"]
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"{method} {path}: {error.read().decode()[:500]}") from None

    def s(self, method, path, body=None):
        return self.call(method, f"/session/{self.session}{path}", body)

    def get(self, url):
        self.s("POST", "/url", {"url": url})

    def script(self, source, *args):
        return self.s("POST", "/execute/sync", {"script": source, "args": list(args)})

    def find(self, css):
        return self.s("POST", "/element", {"using": "css selector", "value": css})[ELEMENT]

    def click(self, css):
        self.s("POST", f"/element/{self.find(css)}/click", {})

    def type(self, css, text):
        element = self.find(css)
        self.s("POST", f"/element/{element}/clear", {})
        self.s("POST", f"/element/{element}/value", {"text": text})

    def wait(self, source, timeout=20):
        """Polls `source` (a script's body) until it returns something truthy."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = self.script(source)
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for: {source}")

    def screenshot(self, path):
        with open(path, "wb") as out:
            out.write(base64.b64decode(self.s("GET", "/screenshot")))

    def quit(self):
        try:
            self.call("DELETE", f"/session/{self.session}")
        finally:
            self.process.terminate()
            self.process.wait(timeout=10)


def cli(binary, *args):
    out = subprocess.run([binary, *args], cwd=ROOT, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def run(self, name, check):
        try:
            check()
        except Exception as error:  # noqa: BLE001 - every failure is reported, then counted
            self.failed += 1
            print(f"FAIL {name}: {error}")
        else:
            self.passed += 1
            print(f"ok   {name}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cli", required=True, help="the kubenat binary the page is compared with")
    parser.add_argument("--dist", default=os.path.join(ROOT, "web", "dist"))
    parser.add_argument("--screenshot", default=os.path.join(ROOT, "target", "web-playground.png"))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    parser.add_argument("--first-journey-ms", type=float, default=1000,
                        help="the most time from navigation start to the first journey")
    options = parser.parse_args()

    url = serve(options.dist)
    driver = WebDriver(options.chromedriver, options.chromium)
    checks = Checks()
    try:
        driver.get(url)
        driver.wait("return document.getElementById('journey').dataset.state === 'done'")

        expected = cli(options.cli, "simulate", "-o", "json")
        first = expected["journeys"][0]

        def same_report():
            page = json.loads(driver.script("return document.getElementById('report-json').textContent"))
            assert page == expected, "the page's report JSON differs from `kubenat simulate -o json`"

        def journey_hops():
            lines = driver.script(
                "return [...document.querySelectorAll('#journey li')].map(li => [li.dataset.at, li.textContent])")
            assert [at for at, _ in lines] == [hop["at"] for hop in first["hops"]], "places differ"
            for (_, text), hop in zip(lines, first["hops"]):
                if hop["kind"] == "node":
                    for address in (hop["before"]["source"], hop["before"]["destination"],
                                    hop["after"]["destination"]):
                        assert address in text, f"{address} missing from {text!r}"
            served_by = first["outcome"]["served_by"]
            assert served_by == "wordpress-5d8f7c9b6-abcde", served_by
            journey = driver.script("return document.getElementById('journey').textContent")
            assert f"served by {served_by}" in journey, "the serving pod is not in #journey"

        def first_journey_in_time():
            shown = float(driver.script("return document.getElementById('journey').dataset.firstMs"))
            print(f"     first journey shown {shown:.0f} ms after navigation start")
            assert shown <= options.first_journey_ms, f"{shown} ms"

        def trace():
            for dst, in_text in (("10.10.1.101:3307", "10.10.0.103:3306"), ("10.10.1.101:3306", "port-not-served")):
                driver.type("#trace-src", "10.10.0.102:42000")
                driver.type("#trace-dst", dst)
                driver.click("#trace-node option[value='nodoa']")
                driver.click("#trace-run")
                verdict = driver.wait(
                    f"const v = document.getElementById('trace-verdict');"
                    f"return v.textContent.includes('{in_text}') && v.dataset.verdict")
                host, port = dst.split(":")
                expected_trace = cli(options.cli, "trace", *NOTES, "--node", "nodoa", "--src", "10.10.0.102:42000",
                                     "--dst", host, "--dport", port, "-o", "json")
                assert verdict == expected_trace["verdict"], f"{dst}: {verdict} != {expected_trace['verdict']}"
                steps = driver.script("return document.getElementById('trace-output').textContent")
                for step in expected_trace["steps"]:
                    assert step in steps, f"{step!r} missing"

        def bad_manifest():
            driver.type("#manifests", BAD_MANIFEST)
            driver.click("#check")
            error = driver.wait(
                "const li = document.querySelector('#manifest-errors li.error'); return li && li.textContent")
            assert error.startswith("manifests.yaml:8: "), error
            assert "spec.ports[0].port" in error, error
            driver.click("#reset-manifests")

        def break_mariadb():
            driver.click("#breakage option[value='kill:mariadb-0']")
            driver.script("document.getElementById('break-summary').textContent = ''")
            driver.click("#break-form button")
            driver.wait("return document.getElementById('break-summary').textContent")
            report = cli(options.cli, "simulate", "examples/miempresa/failover.yaml", "-o", "json")
            page = json.loads(driver.script("return document.getElementById('break-json').textContent"))
            # The same network and breakage as the example file, which names it otherwise.
            assert {**page, "scenario": ""} == {**report, "scenario": ""}, "the report differs from the CLI's"
            failover = report["summary"]
            shown = driver.script(
                "return [document.querySelectorAll('#break-requests .ok').length,"
                " document.querySelectorAll('#break-requests .failed').length,"
                " document.getElementById('break-summary').textContent]")
            assert shown[:2] == [failover["succeeded"], failover["failed"]], f"{shown} vs {failover}"
            assert f"{failover['lost']}." in shown[2], f"lost {failover['lost']}: {shown[2]}"

        def another_seed():
            driver.type("#seed", "7")
            driver.script("document.getElementById('seed').dispatchEvent(new Event('change'))")
            page = json.loads(driver.wait(
                "const r = document.getElementById('report-json').textContent;"
                "return JSON.parse(r).seed === 7 && r"))
            assert page == cli(options.cli, "simulate", "--seed", "7", "-o", "json"), \
                "the page's report differs from `kubenat simulate --seed 7 -o json`"

        def english():
            driver.click("[data-lang='en']")
            title = driver.script("return document.querySelector('h1').textContent")
            assert title == "kubenat: the notes' network in your browser", title
            journey = driver.script("return document.getElementById('journey-title').textContent")
            assert journey.startswith("Request 1: served by "), journey
            driver.click("[data-lang='es']")

        checks.run("report JSON equals `kubenat simulate -o json`", same_report)
        checks.run("#journey: the CLI's hops, rewrites and serving pod", journey_hops)
        checks.run("first journey within the budget", first_journey_in_time)
        checks.run("trace verdicts equal `kubenat trace -o json`", trace)
        checks.run("a bad manifest names line and field", bad_manifest)
        checks.run("killing MariaDB reports what the CLI reports", break_mariadb)
        checks.run("seed 7 gives `kubenat simulate --seed 7 -o json`", another_seed)
        checks.run("labels switch to English", english)

        os.makedirs(os.path.dirname(options.screenshot) or ".", exist_ok=True)
        driver.script("window.scrollTo(0, 0)")
        driver.screenshot(options.screenshot)
        print(f"screenshot: {options.screenshot}")
    finally:
        driver.quit()
    print(f"{checks.passed} passed, {checks.failed} failed")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
