"""Acceptance 2: the official Python client (python3-kubernetes) creates, lists with
selectors, watches and deletes pods and deployments."""
import json
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

from kubernetes import client, config, watch  # noqa: E402
from kubernetes.client.rest import ApiException  # noqa: E402


def pod(name, labels):
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox:1.36",
                                                             command=["sleep", "3600"])]))


class PythonClientTest(harness.ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.api_client = config.new_client_from_config(config_file=cls.cluster.kubeconfig)
        cls.core = client.CoreV1Api(cls.api_client)
        cls.apps = client.AppsV1Api(cls.api_client)

    @classmethod
    def tearDownClass(cls):
        cls.api_client.close()
        super().tearDownClass()

    def setUp(self):
        self.ns = "py-" + self.id().rsplit(".", 1)[1].replace("_", "-")[:40].lower()
        self.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=self.ns)))

    def test_pods_create_list_select_delete(self):
        for i in range(3):
            self.core.create_namespaced_pod(self.ns, pod(f"p{i}", {"app": "a" if i < 2 else "b", "i": str(i)}))
        pods = self.core.list_namespaced_pod(self.ns)
        self.assertEqual(sorted(p.metadata.name for p in pods.items), ["p0", "p1", "p2"])
        self.assertTrue(all(p.status.phase == "Pending" for p in pods.items))
        self.assertEqual(pods.items[0].spec.restart_policy, "Always")
        sel = self.core.list_namespaced_pod(self.ns, label_selector="app=a")
        self.assertEqual(sorted(p.metadata.name for p in sel.items), ["p0", "p1"])
        sel = self.core.list_namespaced_pod(self.ns, label_selector="app in (b),i!=7")
        self.assertEqual([p.metadata.name for p in sel.items], ["p2"])
        sel = self.core.list_namespaced_pod(self.ns, label_selector="!app")
        self.assertEqual(sel.items, [])
        sel = self.core.list_namespaced_pod(self.ns, field_selector="metadata.name=p1")
        self.assertEqual([p.metadata.name for p in sel.items], ["p1"])
        allns = self.core.list_pod_for_all_namespaces(label_selector="i=0")
        self.assertIn(("p0", self.ns), [(p.metadata.name, p.metadata.namespace) for p in allns.items])
        # Unscheduled pods are deleted at once.
        self.core.delete_namespaced_pod("p0", self.ns)
        with self.assertRaises(ApiException) as cm:
            self.core.read_namespaced_pod("p0", self.ns)
        self.assertEqual(cm.exception.status, 404)
        # Paging.
        page = self.core.list_namespaced_pod(self.ns, limit=1)
        self.assertEqual(len(page.items), 1)
        self.assertTrue(page.metadata._continue)
        rest = self.core.list_namespaced_pod(self.ns, limit=5, _continue=page.metadata._continue)
        self.assertEqual(len(rest.items), 1)
        self.assertFalse(rest.metadata._continue)

    def test_watch_pods(self):
        w = watch.Watch()
        events = []
        lst = self.core.list_namespaced_pod(self.ns)
        rv = lst.metadata.resource_version

        def run():
            for ev in w.stream(self.core.list_namespaced_pod, self.ns, resource_version=rv,
                               timeout_seconds=20):
                events.append((ev["type"], ev["object"].metadata.name))
                if len(events) >= 3:
                    w.stop()

        t = threading.Thread(target=run)
        t.start()
        self.core.create_namespaced_pod(self.ns, pod("w1", {"app": "w"}))
        self.core.patch_namespaced_pod("w1", self.ns, {"metadata": {"labels": {"x": "y"}}})
        self.core.delete_namespaced_pod("w1", self.ns)
        t.join(30)
        self.assertEqual(events, [("ADDED", "w1"), ("MODIFIED", "w1"), ("DELETED", "w1")])

    def test_access_reviews(self):
        authz = client.AuthorizationV1Api(self.api_client)
        attrs = client.V1ResourceAttributes(verb="delete", resource="pods", namespace=self.ns)
        ssar = authz.create_self_subject_access_review(client.V1SelfSubjectAccessReview(
            spec=client.V1SelfSubjectAccessReviewSpec(resource_attributes=attrs)))
        self.assertTrue(ssar.status.allowed)
        self.assertEqual(ssar.spec.resource_attributes.verb, "delete")
        lsar = authz.create_namespaced_local_subject_access_review(
            self.ns, client.V1LocalSubjectAccessReview(
                metadata=client.V1ObjectMeta(namespace=self.ns),
                spec=client.V1SubjectAccessReviewSpec(
                    user="jane", resource_attributes=client.V1ResourceAttributes(
                        verb="get", resource="pods"))))
        self.assertTrue(lsar.status.allowed)
        self.assertEqual(lsar.spec.resource_attributes.namespace, self.ns)  # defaulted
        # Invalid: neither kind of attributes; a SubjectAccessReview without user or groups.
        with self.assertRaises(ApiException) as e:
            authz.create_subject_access_review(client.V1SubjectAccessReview(
                spec=client.V1SubjectAccessReviewSpec()))
        self.assertEqual(e.exception.status, 422)
        body = json.loads(e.exception.body)
        self.assertEqual(body["reason"], "Invalid")
        self.assertEqual(sorted(c["field"] for c in body["details"]["causes"]),
                         ["spec.resourceAttributes", "spec.user"])
        # A LocalSubjectAccessReview for another namespace than the URL's.
        with self.assertRaises(ApiException) as e:
            authz.create_namespaced_local_subject_access_review(
                self.ns, client.V1LocalSubjectAccessReview(spec=client.V1SubjectAccessReviewSpec(
                    user="jane", resource_attributes=client.V1ResourceAttributes(
                        verb="get", resource="pods", namespace="kube-system"))))
        self.assertEqual(e.exception.status, 400)
        self.assertIn("must match namespace", json.loads(e.exception.body)["message"])
        rules = authz.create_self_subject_rules_review(client.V1SelfSubjectRulesReview(
            spec=client.V1SelfSubjectRulesReviewSpec(namespace=self.ns)))
        self.assertEqual(rules.status.resource_rules[0].verbs, ["*"])
        self.assertFalse(rules.status.incomplete)

    def test_namespaced_binding(self):
        # POST .../bindings, the top-level Binding the client's create_namespaced_binding uses
        # (the scheduler uses pods/<name>/binding). Upstream answers with a Status, which the
        # client cannot read as a V1Binding: hence _preload_content=False.
        self.core.create_namespaced_pod(self.ns, pod("bound", {"app": "b"}))
        binding = client.V1Binding(metadata=client.V1ObjectMeta(name="bound"),
                                   target=client.V1ObjectReference(kind="Node", name="n1"))
        r = self.core.create_namespaced_binding(self.ns, binding, _preload_content=False)
        self.assertEqual(r.status, 201)
        self.assertEqual(json.loads(r.data)["status"], "Success")
        self.assertEqual(self.core.read_namespaced_pod("bound", self.ns).spec.node_name, "n1")
        with self.assertRaises(ApiException) as e:
            self.core.create_namespaced_binding(self.ns, binding, _preload_content=False)
        self.assertEqual(e.exception.status, 409)

    def test_token_review(self):
        authn = client.AuthenticationV1Api(self.api_client)
        self.core.create_namespaced_service_account(
            self.ns, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="reviewer")))
        token = self.core.create_namespaced_service_account_token(
            "reviewer", self.ns, client.AuthenticationV1TokenRequest(
                spec=client.V1TokenRequestSpec(audiences=[]))).status.token
        review = authn.create_token_review(client.V1TokenReview(
            spec=client.V1TokenReviewSpec(token=token)))
        self.assertTrue(review.status.authenticated)
        self.assertEqual(review.status.user.username, f"system:serviceaccount:{self.ns}:reviewer")
        self.assertIn("system:serviceaccounts", review.status.user.groups)
        self.assertEqual(review.status.audiences, ["https://kubernetes.default.svc.cluster.local"])
        # The token is not for another audience; a forged one is refused with the reason.
        other = authn.create_token_review(client.V1TokenReview(
            spec=client.V1TokenReviewSpec(token=token, audiences=["vault"])))
        self.assertFalse(other.status.authenticated)
        forged = authn.create_token_review(client.V1TokenReview(
            spec=client.V1TokenReviewSpec(token=token[:-4] + "AAAA")))
        self.assertFalse(forged.status.authenticated)
        self.assertIn("invalid bearer token", forged.status.error)
        with self.assertRaises(ApiException) as e:
            authn.create_token_review(client.V1TokenReview(spec=client.V1TokenReviewSpec()))
        self.assertEqual(e.exception.status, 400)

    def test_deployments(self):
        dep = client.V1Deployment(
            metadata=client.V1ObjectMeta(name="d1", labels={"team": "x"}),
            spec=client.V1DeploymentSpec(
                replicas=2,
                selector=client.V1LabelSelector(match_labels={"app": "d1"}),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels={"app": "d1"}),
                    spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox")]))))
        created = self.apps.create_namespaced_deployment(self.ns, dep)
        self.assertEqual(created.metadata.generation, 1)
        self.assertEqual(created.spec.template.spec.containers[0].image_pull_policy, "Always")
        got = self.apps.list_namespaced_deployment(self.ns, label_selector="team=x")
        self.assertEqual([d.metadata.name for d in got.items], ["d1"])
        scaled = self.apps.patch_namespaced_deployment_scale("d1", self.ns, {"spec": {"replicas": 4}})
        self.assertEqual(scaled.spec.replicas, 4)
        self.assertEqual(self.apps.read_namespaced_deployment("d1", self.ns).metadata.generation, 2)
        w = watch.Watch()
        seen = []
        for ev in w.stream(self.apps.list_namespaced_deployment, self.ns, timeout_seconds=5):
            seen.append((ev["type"], ev["object"].metadata.name))
            w.stop()
        self.assertEqual(seen, [("ADDED", "d1")])
        self.apps.delete_namespaced_deployment("d1", self.ns)
        with self.assertRaises(ApiException) as cm:
            self.apps.read_namespaced_deployment("d1", self.ns)
        self.assertEqual(cm.exception.status, 404)
        with self.assertRaises(ApiException) as cm:
            self.apps.create_namespaced_deployment("no-such-ns", dep)
        self.assertEqual(cm.exception.status, 404)


if __name__ == "__main__":
    harness.main()
