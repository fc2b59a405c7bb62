"""Run the search service, fill a collection with the bundled demo clips and search it over HTTP.

The same calls work against ``audiovec serve`` on another machine: replace ``server.url`` with its address.

Run: python examples/search_service.py
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import requests

from audiovec.data import demo_dir
from audiovec.service import ServiceSettings
from audiovec.service.server import BackgroundServer

clips = sorted(Path(demo_dir()).rglob("*.flac"))
with tempfile.TemporaryDirectory() as data, BackgroundServer(ServiceSettings(data_dir=data)) as server:
    api = f"{server.url}/api/v1"
    with requests.Session() as http:
        r = http.post(f"{api}/collections", json={"name": "drums", "embedder": "mfcc", "pooling": "mean_std+l2"})
        r.raise_for_status()
        files = [("files", (p.name, p.read_bytes())) for p in clips]
        labels = json.dumps([{"label": p.parent.name} for p in clips])
        added = http.post(f"{api}/collections/drums/items", files=files, data={"metadata": labels}).json()["added"]
        print(f"added {len(added)} clips to {server.url}/ (open it in a browser while this runs to see the page)")

        query = clips[3]
        r = http.post(
            f"{api}/collections/drums/search", files={"file": (query.name, query.read_bytes())}, data={"k": 5}
        )
        body = r.json()
        print(f"query {query.name} ({query.parent.name}); timings {body['timings']}")
        for rank, hit in enumerate(body["results"], 1):
            print(f"  {rank}. {hit['score']:.3f}  {hit['metadata']['label']:<10} {hit['filename']}")

        # only the same label, and "more like this" for the best other hit
        only = json.dumps({"label": query.parent.name})
        r = http.post(
            f"{api}/collections/drums/search",
            files={"file": (query.name, query.read_bytes())},
            data={"k": 3, "filter": only},
        )
        print("same label only:", [h["filename"] for h in r.json()["results"]])
        similar = http.post(f"{api}/collections/drums/search/item", json={"item_id": body["results"][1]["id"], "k": 3})
        print("more like the 2nd hit:", [h["filename"] for h in similar.json()["results"]])
        print("health:", http.get(f"{server.url}/health").json())
