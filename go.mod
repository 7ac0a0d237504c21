module github.com/terse-llm/terse

go 1.26.8
