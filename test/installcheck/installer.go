package installcheck

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/proberedirect/probe-redirect-operator/test/localcluster"
)

// rbacKinds are the kinds InstallerRBAC creates from the installer: who the operator is and what
// it may do, nothing that runs.
var rbacKinds = map[string]bool{
	"Namespace": true, "ServiceAccount": true,
	"Role": true, "RoleBinding": true, "ClusterRole": true, "ClusterRoleBinding": true,
}

// InstallerRBAC creates the Namespace, ServiceAccount, Roles, ClusterRoles and bindings of the
// installer manifest installYAML (dist/install.yaml) with admin, and returns the namespace and
// name of its ServiceAccount: the identity the operator runs as when installed. Objects that
// already exist are left as they are.
func InstallerRBAC(ctx context.Context, admin client.Client, installYAML string) (namespace, serviceAccount string, err error) {
	f, err := os.Open(installYAML)
	if err != nil {
		return "", "", err
	}
	defer func() { _ = f.Close() }()
	dec := utilyaml.NewYAMLOrJSONDecoder(f, 64*1024)
	for {
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return "", "", fmt.Errorf("decoding %s: %w", installYAML, err)
		}
		u := &unstructured.Unstructured{Object: obj}
		if obj == nil || !rbacKinds[u.GetKind()] {
			continue
		}
		if u.GetKind() == "ServiceAccount" {
			namespace, serviceAccount = u.GetNamespace(), u.GetName()
		}
		if err := admin.Create(ctx, u); err != nil && !apierrors.IsAlreadyExists(err) {
			return "", "", fmt.Errorf("creating %s %s: %w", u.GetKind(), u.GetName(), err)
		}
	}
	if serviceAccount == "" {
		return "", "", fmt.Errorf("no ServiceAccount in %s", installYAML)
	}
	return namespace, serviceAccount, nil
}

// TokenKubeconfig writes <cluster dir>/<name>.kubeconfig, which authenticates as
// namespace/serviceAccount with a token valid for an hour and nothing else, and returns its path.
func TokenKubeconfig(ctx context.Context, cluster *localcluster.Cluster, clientset kubernetes.Interface, namespace, serviceAccount, name string) (string, error) {
	token, err := clientset.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, serviceAccount,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To(int64(3600))}}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("requesting a token for %s/%s: %w", namespace, serviceAccount, err)
	}
	config := clientcmdapi.NewConfig()
	config.Clusters["local"] = &clientcmdapi.Cluster{Server: cluster.APIServerURL, CertificateAuthorityData: cluster.CABundle}
	config.AuthInfos["operator"] = &clientcmdapi.AuthInfo{Token: token.Status.Token}
	config.Contexts["operator"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "operator"}
	config.CurrentContext = "operator"
	path := filepath.Join(cluster.Dir, name+".kubeconfig")
	if err := clientcmd.WriteToFile(*config, path); err != nil {
		return "", err
	}
	return path, nil
}
