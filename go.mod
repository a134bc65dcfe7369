module github.com/medgemma/medgemma

go 1.26
