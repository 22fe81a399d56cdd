module github.com/brokkr-go/brokkr/services/auth

go 1.26.8
