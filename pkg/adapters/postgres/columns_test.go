package postgres

import "testing"

func TestColumnName(t *testing.T) {
	for field, want := range map[string]string{
		"ID": "id", "Name": "name", "CreatedAt": "created_at", "GeneratorID": "generator_id",
		"DeploymentObjectID": "deployment_object_id", "URLEncrypted": "url_encrypted", "PakHash": "pak_hash",
		"YAMLContent": "yaml_content", "IPAddress": "ip_address", "IsDeletionMarker": "is_deletion_marker",
		"LastStatusCode": "last_status_code", "Sha256Sum": "sha256_sum",
	} {
		if got := columnName(field); got != want {
			t.Errorf("columnName(%q) = %q, want %q", field, got, want)
		}
	}
}
