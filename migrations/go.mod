module github.com/brokkr-go/brokkr/migrations

go 1.26.8
