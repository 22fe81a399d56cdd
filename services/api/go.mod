module github.com/brokkr-go/brokkr/services/api

go 1.26.8

replace (
	github.com/brokkr-go/brokkr/migrations => ../../migrations
	github.com/brokkr-go/brokkr/pkg => ../../pkg
)
