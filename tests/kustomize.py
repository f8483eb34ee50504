"""The part of ``kustomize build`` that deploy/k8s uses, in Python: no kustomize binary comes from the
package registries this project installs from (Debian's kubernetes-client is 1.20, older than these
kustomizations). tests/test_k8s.py compares it with ``kubectl kustomize`` wherever one is installed.

Supported: ``resources`` (files and directories with a kustomization.yaml), ``namespace``,
``replicas``, ``images`` and ``patches`` by ``path`` (strategic merge, the target named by the patch's
kind and name; lists of objects with a ``name`` merge by name). Anything else is refused.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

KNOWN = {"apiVersion", "kind", "resources", "namespace", "replicas", "images", "patches"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}


def build(directory: Path) -> list[dict[str, Any]]:
    spec = yaml.safe_load((directory / "kustomization.yaml").read_text(encoding="utf-8"))
    unknown = set(spec) - KNOWN
    if unknown:
        raise ValueError(f"{directory}: kustomization fields not supported here: {sorted(unknown)}")
    resources: list[dict[str, Any]] = []
    for entry in spec.get("resources", []):
        path = (directory / entry).resolve()
        if path.is_dir():
            resources.extend(build(path))
        else:
            resources.extend(d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d)
    for patch_entry in spec.get("patches", []):
        if set(patch_entry) != {"path"}:
            raise ValueError(f"{directory}: only patches by path are supported: {patch_entry}")
        for patch in yaml.safe_load_all((directory / patch_entry["path"]).read_text(encoding="utf-8")):
            target = _find(resources, patch["kind"], patch["metadata"]["name"])
            merged = merge(target, patch)
            target.clear()
            target.update(merged)
    for item in spec.get("replicas", []):
        _find(resources, None, item["name"], with_replicas=True)["spec"]["replicas"] = item["count"]
    for image in spec.get("images", []):
        for resource in resources:
            for container in _containers(resource):
                name, _, _tag = container["image"].partition(":")
                if name == image["name"]:
                    container["image"] = f"{image.get('newName', name)}:{image.get('newTag', _tag)}"
    namespace = spec.get("namespace")
    if namespace:
        for resource in resources:
            if resource["kind"] not in CLUSTER_SCOPED:
                resource.setdefault("metadata", {})["namespace"] = namespace
    return resources


def _find(resources: list[dict[str, Any]], kind: str | None, name: str, with_replicas: bool = False) -> dict[str, Any]:
    found = [
        r
        for r in resources
        if r["metadata"]["name"] == name
        and (kind is None or r["kind"] == kind)
        and (not with_replicas or r["kind"] in ("Deployment", "StatefulSet", "ReplicaSet"))
    ]
    if len(found) != 1:
        raise ValueError(f"{kind or 'workload'} {name!r}: {len(found)} matches")
    return found[0]


def _containers(resource: dict[str, Any]) -> list[dict[str, Any]]:
    spec = resource.get("spec", {})
    pod = spec.get("template", {}).get("spec", {}) if "template" in spec else spec  # workloads, or a Pod
    return [*pod.get("initContainers", []), *pod.get("containers", [])]


def merge(base: Any, patch: Any) -> Any:
    """Strategic merge, as far as these manifests need it."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = copy.deepcopy(base)
        for key, value in patch.items():
            out[key] = merge(base[key], value) if key in base else copy.deepcopy(value)
        return out
    if isinstance(base, list) and isinstance(patch, list) and all(isinstance(i, dict) and "name" in i for i in patch):
        out_list = copy.deepcopy(base)
        for item in patch:
            same = [n for n, b in enumerate(out_list) if isinstance(b, dict) and b.get("name") == item["name"]]
            if same:
                out_list[same[0]] = merge(out_list[same[0]], item)
            else:
                out_list.append(copy.deepcopy(item))
        return out_list
    return copy.deepcopy(patch)
