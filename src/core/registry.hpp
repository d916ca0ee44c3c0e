// One registry per pluggable family (mechanisms, workloads, experiments, policies): each
// implementation registers its scenario name, its config parser and its factory in one place,
// beside its own code, and the scenario's list of allowed names is the registry's.
//
// Contract: parse() reads the entry's name key as one of the registered names (anything else
// is an InputError listing them, never a fallback), then hands the same Params view to that
// implementation's parser, which declares and reads the rest of the entry. The Spec it returns
// is the entry's typed configuration; make() builds independent objects from it, as many as
// the run needs (one per VM for workloads). Specs are immutable and shared.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/params.hpp"

namespace memvirt {

// A parsed entry of family `Product`: its registered name and typed configuration.
template <typename Product>
class Spec {
 public:
  explicit Spec(std::string name) : name_(std::move(name)) {}
  virtual ~Spec() = default;
  Spec(const Spec&) = delete;
  Spec& operator=(const Spec&) = delete;

  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] virtual std::unique_ptr<Product> make() const = 0;

  // The configuration when this entry is an `Impl`, else nullptr: what a reader of the typed
  // scenario (the lab) uses to see an entry's settings without parsing them again.
  template <typename Impl>
  [[nodiscard]] const typename Impl::Config* as() const;

 private:
  std::string name_;
};

// The Spec of implementation `Impl`, which has `using Config = ...;`, a constructor from its
// Config and `static Config config_from(Params&)`.
template <typename Product, typename Impl>
class SpecOf final : public Spec<Product> {
 public:
  using Config = typename Impl::Config;
  SpecOf(std::string name, Config config)
      : Spec<Product>(std::move(name)), config_(std::move(config)) {}
  [[nodiscard]] const Config& config() const { return config_; }
  [[nodiscard]] std::unique_ptr<Product> make() const override {
    return std::make_unique<Impl>(config_);
  }

 private:
  Config config_;
};

template <typename Product>
template <typename Impl>
const typename Impl::Config* Spec<Product>::as() const {
  const auto* typed = dynamic_cast<const SpecOf<Product, Impl>*>(this);
  return typed == nullptr ? nullptr : &typed->config();
}

template <typename Product>
using SpecPtr = std::shared_ptr<const Spec<Product>>;

template <typename Product>
class Registry {
 public:
  using Parser = std::function<SpecPtr<Product>(Params&)>;

  // `family` names the family in errors ("mechanism"); `key` is the entry's name key
  // ("impl", "type").
  Registry(std::string family, std::string key)
      : family_(std::move(family)), key_(std::move(key)) {}

  // Registers `name`; a name registered twice is a programming error.
  void add(const std::string& name, Parser parse) {
    if (!parsers_.emplace(name, std::move(parse)).second) {
      throw std::logic_error(family_ + " '" + name + "' registered twice");
    }
    names_.push_back(name);
  }
  // Registers `Impl` under `name` with its own config parser.
  template <typename Impl>
  void add(const std::string& name) {
    add(name, [name](Params& p) -> SpecPtr<Product> {
      return std::make_shared<SpecOf<Product, Impl>>(name, Impl::config_from(p));
    });
  }

  // Registers `Impl` under `name` with a parser of its Config (for one implementation
  // registered under several names).
  template <typename Impl>
  void add(const std::string& name, std::function<typename Impl::Config(Params&)> parse) {
    add(name, [name, parse = std::move(parse)](Params& p) -> SpecPtr<Product> {
      return std::make_shared<SpecOf<Product, Impl>>(name, parse(p));
    });
  }

  // The registered names, in registration order.
  [[nodiscard]] const std::vector<std::string>& names() const { return names_; }
  [[nodiscard]] bool contains(const std::string& name) const { return parsers_.count(name) > 0; }

  // Reads one entry. `def` is the name when the key is absent (empty: the key is required).
  [[nodiscard]] SpecPtr<Product> parse(Params& p, const std::string& def = {}) const {
    if (def.empty() && !p.has(key_)) {
      p.fail("", "missing '" + key_ + "': the " + family_ + ", one of " + joined());
    }
    const std::string name = p.choice(key_, def, names_, family_);
    return parsers_.at(name)(p);
  }

 private:
  [[nodiscard]] std::string joined() const {
    std::string out;
    for (const auto& n : names_) out += (out.empty() ? "" : ", ") + n;
    return out;
  }
  std::string family_;
  std::string key_;
  std::vector<std::string> names_;
  std::map<std::string, Parser> parsers_;
};

}  // namespace memvirt
